package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/internal/wrapper"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// runcBundle is an OCI bundle on the host for a private runc.
type runcBundle struct {
	dir, root, out, stateDir string
	id, runc                 string
}

// futureField is a config.json field no spec knows: it must survive the
// wrapper's patch.
const futureField = "org.fuseguard.test.future"

// newRuncBundle builds a bundle for the runtime runc from busybox-static
// and fusefixture whose process is args: `runc spec`, then terminal off,
// /dev/fuse and CAP_SYS_ADMIN so the fixture can mount inside, and an
// unknown field.
func newRuncBundle(t *testing.T, runc string, args ...string) *runcBundle {
	t.Helper()
	testenv.RequireFUSE(t)
	busybox := testenv.RequireBinary(t, "busybox")
	fix := fixture.Binary(t)
	dir := t.TempDir()
	b := &runcBundle{
		dir: dir, root: filepath.Join(dir, "runc-root"), out: filepath.Join(dir, "out.log"),
		stateDir: filepath.Join(dir, "state"), runc: runc,
		id: fmt.Sprintf("fge2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9),
	}
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "mnt/f", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, busybox, filepath.Join(rootfs, "bin/busybox"))
	for _, a := range []string{"sh", "sleep", "cat", "ls"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, fix, filepath.Join(rootfs, "fusefixture"))
	if r := run(t, 10*time.Second, nil, nil, runc, "spec", "--bundle", dir); r.code != 0 {
		t.Fatalf("runc spec: %d %s", r.code, r.stderr)
	}
	var fuse unix.Stat_t
	if err := unix.Stat("/dev/fuse", &fuse); err != nil {
		t.Fatal(err)
	}
	major, minor := int64(unix.Major(fuse.Rdev)), int64(unix.Minor(fuse.Rdev))
	editConfig(t, dir, func(c map[string]any) {
		proc := c["process"].(map[string]any)
		proc["args"] = args
		proc["terminal"] = false
		proc[futureField] = map[string]any{"kept": true}
		caps := proc["capabilities"].(map[string]any)
		for _, set := range []string{"bounding", "effective", "permitted"} {
			caps[set] = append(caps[set].([]any), "CAP_SYS_ADMIN")
		}
		c["root"].(map[string]any)["readonly"] = false
		linux := c["linux"].(map[string]any)
		linux["devices"] = []any{map[string]any{"path": "/dev/fuse", "type": "c", "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0}}
		res := linux["resources"].(map[string]any)
		res["devices"] = append(res["devices"].([]any), map[string]any{"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"})
		c[futureField] = map[string]any{"nested": []any{1, "two"}}
	})
	t.Cleanup(func() { b.destroy(t) })
	return b
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func editConfig(t *testing.T, bundle string, edit func(map[string]any)) {
	t.Helper()
	c := readConfig(t, bundle)
	edit(c)
	b, err := json.MarshalIndent(c, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readConfig(t *testing.T, bundle string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// startThroughWrapper creates the container through the wrapper (hooks
// injected, so the hook records it), its stdio on b.out, and starts it.
func (b *runcBundle) startThroughWrapper(t *testing.T) {
	t.Helper()
	out, err := os.Create(b.out)
	if err != nil {
		t.Fatal(err)
	}
	// The container's stdio is the runtime's: create hands it over.
	cr := runWithOutput(t, out, fgcmd.Binary(t), "runtime", "--fuseguard-runtime", b.runc, "--fuseguard-state-dir="+b.stateDir,
		"--root", b.root, "create", "--bundle", b.dir, b.id)
	out.Close()
	if cr.code != 0 {
		t.Fatalf("runtime create: exit %d: %s\n%s", cr.code, cr.stderr, mustRead(b.out))
	}
	if r := b.wrapper(t, 20*time.Second, "start", b.id); r.code != 0 {
		t.Fatalf("runtime start: %d %s", r.code, r.stderr)
	}
}

// wrapper runs `fuseguard runtime --fuseguard-… --root R args…`.
func (b *runcBundle) wrapper(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	bin := fgcmd.Binary(t)
	argv := append([]string{bin, "runtime", "--fuseguard-runtime=" + b.runc, "--fuseguard-state-dir", b.stateDir, "--root", b.root}, args...)
	return run(t, timeout, nil, nil, argv...)
}

// state is `runc state` of the container (ok false once it is gone).
func (b *runcBundle) state(t *testing.T) (st struct {
	Pid    int    `json:"pid"`
	Status string `json:"status"`
}, ok bool) {
	t.Helper()
	r := run(t, 10*time.Second, nil, nil, b.runc, "--root", b.root, "state", b.id)
	if r.code != 0 {
		return st, false
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("runc state: %v: %s", err, r.stdout)
	}
	return st, true
}

// destroy aborts the container's FUSE connection (found in its output)
// before killing and deleting it, so nothing can hang.
func (b *runcBundle) destroy(t *testing.T) {
	if logs, err := os.ReadFile(b.out); err == nil {
		// Only if still the container's: runc reports a wedged init as
		// stopped without a pid, so the record names it too.
		var inits []int
		if st, ok := b.state(t); ok && st.Pid > 0 {
			inits = append(inits, st.Pid)
		}
		if rec, err := (record.Store{Dir: b.stateDir}).Load(b.id); err == nil {
			inits = append(inits, rec.InitPID)
		}
		if conn, ok := fixture.MountedConn(string(logs)); ok && len(inits) > 0 {
			if err := dockerd.AbortFUSEOf(inits, uint32(conn)); err != nil {
				t.Logf("cleanup: abort %d: %v", conn, err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, args := range [][]string{{"kill", b.id, "KILL"}, {"delete", "--force", b.id}} {
		cmd := execCmd(ctx, b.runc, append([]string{"--root", b.root}, args...)...)
		_ = cmd.Run()
	}
}

// TestRuncWrapperRescuesW2 drives each real runc through the wrapper:
// create (with the flags its callers pass: containerd 2's --pidfd-socket
// for runc ≥ 1.2) injects the hooks and keeps unknown config fields, the
// createRuntime hook records init, a W2 self-deadlock is rescued by the
// wrapper's kill, and the wrapper's delete removes the record.
func TestRuncWrapperRescuesW2(t *testing.T) {
	testenv.ForEachRunc(t, testRuncWrapperRescuesW2)
}

func testRuncWrapperRescuesW2(t *testing.T, runc string) {
	b := newRuncBundle(t, runc, "/fusefixture", "init", "--", "/fusefixture", "serve", "-mode", "read", "-mount", "/mnt/f", "-self-read")
	bin := fgcmd.Binary(t)

	out, err := os.Create(b.out)
	if err != nil {
		t.Fatal(err)
	}
	// containerd's argv (go-runc's Create); runc ≥ 1.2 also gets
	// --pidfd-socket, which runc 1.1 does not know.
	createArgs := []string{"create", "--bundle", b.dir, "--pid-file", filepath.Join(b.dir, "init.pid")}
	pidfd := (<-chan error)(nil)
	if testenv.RuncAtLeast(t, runc, 1, 2) {
		sock := filepath.Join(b.dir, "pidfd.sock")
		pidfd = receivePidfd(t, sock)
		createArgs = append(createArgs, "--pidfd-socket", sock)
	}
	// The container's stdio is the runtime's: runc create hands it over.
	cr := runWithOutput(t, out, append([]string{bin, "runtime", "--fuseguard-runtime", b.runc, "--fuseguard-state-dir=" + b.stateDir,
		"--root", b.root}, append(createArgs, b.id)...)...)
	out.Close()
	if cr.code != 0 {
		t.Fatalf("runtime create: exit %d: %s\n%s", cr.code, cr.stderr, mustRead(b.out))
	}
	if pidfd != nil {
		if err := <-pidfd; err != nil {
			t.Errorf("--pidfd-socket: %v", err)
		}
	}
	if log := mustRead(filepath.Join(b.stateDir, "runtime.log")); strings.Contains(log, "not understood") || strings.Contains(log, "does not know") {
		t.Errorf("the wrapper did not understand %q:\n%s", createArgs, log)
	}

	// The hooks are in config.json, unknown fields kept.
	c := readConfig(t, b.dir)
	if _, ok := c[futureField]; !ok {
		t.Errorf("top-level %s lost by the patch", futureField)
	}
	if _, ok := c["process"].(map[string]any)[futureField]; !ok {
		t.Errorf("process.%s lost by the patch", futureField)
	}
	hooks, _ := c["hooks"].(map[string]any)
	for _, stage := range []string{"poststart", "poststop"} {
		if list, _ := hooks[stage].([]any); len(list) != 0 {
			t.Errorf("%s hooks injected: %v (the wrapper injects createRuntime only)", stage, list)
		}
	}
	if !b.hooked(c, bin) {
		t.Errorf("no fuseguard createRuntime hook with the state dir in config.json: %v", hooks["createRuntime"])
	}

	st, ok := b.state(t)
	if !ok || st.Status != "created" || st.Pid <= 0 {
		t.Fatalf("after create: %+v %v", st, ok)
	}
	store := record.Store{Dir: b.stateDir}
	rec, err := store.Load(b.id)
	if err != nil {
		t.Fatalf("no record after createRuntime: %v\nhook.log:\n%s", err, mustRead(filepath.Join(b.stateDir, "hook.log")))
	}
	if rec.InitPID != st.Pid || rec.InitStartTime == 0 || rec.Bundle != b.dir {
		t.Fatalf("record %+v, want init %d, a start time and bundle %s", rec, st.Pid, b.dir)
	}

	if r := b.wrapper(t, 20*time.Second, "start", b.id); r.code != 0 {
		t.Fatalf("runtime start: %d %s", r.code, r.stderr)
	}
	logs := waitFile(t, b.out, "fusefixture: ready role=serve", 20*time.Second)
	conn := uint32(fixture.ConnFromOutput(t, logs))
	if !connExists(conn) {
		t.Fatalf("connection %d of the container not in fusectl", conn)
	}

	r := b.wrapper(t, 30*time.Second, "kill", b.id, "KILL")
	// The documented bound of the wrapper's kill with its default timeouts
	// (README: 13.5 s), measured on a real wedge.
	bound := (&wrapper.Wrapper{}).KillBound()
	t.Logf("runtime kill of W2 took %v (bound %v)", r.took.Round(time.Millisecond), bound)
	if r.code != 0 {
		t.Fatalf("runtime kill: exit %d: %s", r.code, r.stderr)
	}
	if r.took > bound {
		t.Errorf("runtime kill of W2 took %v, more than its bound %v", r.took, bound)
	}
	if st, ok := b.state(t); !ok || st.Status != "stopped" {
		t.Fatalf("after runtime kill: %+v (known %v), want stopped", st, ok)
	}
	if connExists(conn) {
		t.Errorf("connection %d survived the rescue", conn)
	}
	lines := fgcmd.LogLines(filepath.Join(b.stateDir, "runtime.log"), b.id)
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, `"outcome":"recovered"`) }) {
		t.Errorf("runtime.log has no recovered outcome for %s:\n%s", b.id, strings.Join(lines, "\n"))
	}

	if r := b.wrapper(t, 20*time.Second, "delete", b.id); r.code != 0 {
		t.Fatalf("runtime delete: %d %s", r.code, r.stderr)
	}
	if _, ok := b.state(t); ok {
		t.Error("runc still knows the container after delete")
	}
	if _, err := store.Load(b.id); !errors.Is(err, record.ErrNoRecord) {
		t.Errorf("record after the wrapper's delete: %v, want ErrNoRecord", err)
	}
}

// hooked reports whether config c has the createRuntime hook that the
// wrapper injects: bin, with the bundle's state directory in its env.
func (b *runcBundle) hooked(c map[string]any, bin string) bool {
	hooks, _ := c["hooks"].(map[string]any)
	list, _ := hooks["createRuntime"].([]any)
	return slices.ContainsFunc(list, func(h any) bool {
		m, _ := h.(map[string]any)
		env, _ := json.Marshal(m["env"])
		return m["path"] == bin && strings.Contains(string(env), record.EnvStateDir+"="+b.stateDir)
	})
}

func connExists(id uint32) bool {
	_, err := os.Stat(filepath.Join(dockerd.FusectlDir, fmt.Sprint(id)))
	return err == nil
}

func mustRead(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// TestRuncWrapperForceDeleteW2: `delete --force` of a wedged W2, which
// plain runc fails after waiting 10 s, succeeds through the wrapper: it
// rescues first and removes the record, then runc deletes.
func TestRuncWrapperForceDeleteW2(t *testing.T) {
	testenv.ForEachRunc(t, testRuncWrapperForceDeleteW2)
}

func testRuncWrapperForceDeleteW2(t *testing.T, runc string) {
	b := newRuncBundle(t, runc, "/fusefixture", "init", "--", "/fusefixture", "serve", "-mode", "lookup", "-mount", "/mnt/f", "-self-read")
	b.startThroughWrapper(t)
	conn := uint32(fixture.ConnFromOutput(t, waitFile(t, b.out, "fusefixture: ready role=serve", 20*time.Second)))

	r := b.wrapper(t, 30*time.Second, "delete", "--force", b.id)
	// The documented bound of the wrapper's own part with its default
	// timeouts (README: 8.5 s). What is measured also holds runc's delete
	// of the rescued container, after the exec: milliseconds.
	bound := (&wrapper.Wrapper{}).ForceDeleteBound()
	t.Logf("runtime delete --force of W2 took %v (bound %v)", r.took.Round(time.Millisecond), bound)
	if r.code != 0 {
		t.Fatalf("runtime delete --force: exit %d: %s", r.code, r.stderr)
	}
	if r.took > bound {
		t.Errorf("runtime delete --force of W2 took %v, more than the wrapper's bound %v", r.took, bound)
	}
	if _, ok := b.state(t); ok {
		t.Error("runc still knows the container after delete --force")
	}
	if connExists(conn) {
		t.Errorf("connection %d survived", conn)
	}
	if _, err := (record.Store{Dir: b.stateDir}).Load(b.id); !errors.Is(err, record.ErrNoRecord) {
		t.Errorf("record after delete --force: %v", err)
	}
}

// receivePidfd listens on sock for the pidfd runc ≥ 1.2 sends to
// --pidfd-socket (one SCM_RIGHTS message) and reports, once, whether one
// arrived within 30 s. The received fd is closed.
func receivePidfd(t *testing.T, sock string) <-chan error {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer l.Close()
		_ = l.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := l.AcceptUnix()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			done <- err
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			done <- fmt.Errorf("no control message (%d): %v", len(msgs), err)
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		for _, fd := range fds {
			unix.Close(fd)
		}
		if err == nil && len(fds) != 1 {
			err = fmt.Errorf("%d fds received, want 1", len(fds))
		}
		done <- err
	}()
	return done
}
