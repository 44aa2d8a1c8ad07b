package podman

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/teardown"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// Deadlines of the harness.
const (
	// CallTimeout bounds one podman command whose context has no deadline.
	CallTimeout = 30 * time.Second
	// ImportTimeout bounds one `podman import`.
	ImportTimeout = 60 * time.Second

	removeTimeout   = 30 * time.Second
	killWaitTimeout = 5 * time.Second
	rmdirTimeout    = 20 * time.Second
	abortTimeout    = 2 * time.Second
	pollInterval    = 20 * time.Millisecond
)

// systemContainersDir is where podman, run as root, keeps its image copy
// cache (cache/blob-info-cache-v1.boltdb) whatever its --root.
const systemContainersDir = "/var/lib/containers"

// Podman is a private podman: every command runs with its own root,
// runroot, tmpdir, vfs storage and hooks directory below Dir.
type Podman struct {
	// Dir holds everything this podman owns.
	Dir string
	// HooksDir is podman's --hooks-dir.
	HooksDir string

	binary string   // podman
	runc   string   // the OCI runtime
	global []string // podman's global flags
	enter  []string // the command that runs podman in its mount namespace ("": the test's)

	// madeSystemDir: systemContainersDir did not exist before this podman.
	madeSystemDir bool

	mu    sync.Mutex
	conns []fuseconn.ConnRef // the test's own FUSE connections
	ids   []string           // every container run, even those podman forgot
}

// Start prepares a private podman whose hooks directory holds the shipped
// hooks.d files for fuseguard (the binary at binary, records in
// stateDir; see WriteHooksDir), or nothing when binary is "" (podman
// without fuseguard), and registers its teardown with t.Cleanup. It needs
// root, podman, conmon and runc (Debian packages).
func Start(t testing.TB, binary, stateDir string) *Podman {
	t.Helper()
	p := newPodman(t)
	if binary != "" {
		WriteHooksDir(t, p.HooksDir, binary, stateDir)
	} else if err := os.Mkdir(p.HooksDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// StartAsShipped prepares a private podman whose hooks directory holds
// the shipped hooks.d files byte for byte: they run /usr/local/bin/fuseguard
// and keep their records in the default /run/fuseguard. podman runs in a
// mount namespace of the test's own where those two paths are the test's
// binary and a tmpfs (the rest of /run and /usr/local/bin is the host's),
// so nothing reaches the host's. It returns the podman and the state
// directory as the test reaches it; the namespace ends, every process in
// it killed, after the podman's teardown.
func StartAsShipped(t testing.TB, binary string) (*Podman, string) {
	t.Helper()
	testenv.RequireRoot(t)
	ns := newPrivateNS(t, binary)
	p := newPodman(t)
	p.enter = ns.enter(t)
	WriteHooksDir(t, p.HooksDir, shippedBinary, "")
	return p, ns.stateDir()
}

// newPodman prepares a private podman without hooks directory and
// registers its teardown.
func newPodman(t testing.TB) *Podman {
	t.Helper()
	testenv.RequireRoot(t)
	bin := testenv.RequireBinary(t, "podman")
	runc := testenv.RequireBinary(t, "runc")
	testenv.RequireBinary(t, "conmon")
	dir, err := os.MkdirTemp("", "fgpodman-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Podman{Dir: dir, HooksDir: filepath.Join(dir, "hooks.d"), binary: bin, runc: runc}
	if _, err := os.Lstat(systemContainersDir); errors.Is(err, os.ErrNotExist) {
		p.madeSystemDir = true
	}
	t.Cleanup(func() { p.teardown(t) })
	p.global = []string{
		"--root", filepath.Join(dir, "root"),
		"--runroot", filepath.Join(dir, "runroot"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "vfs",
		"--hooks-dir", p.HooksDir,
		// runc keeps its state in its default root: podman 4.3 does not
		// pass --runtime-flag on to the cleanup conmon runs at exit.
		"--runtime", runc,
		// What podman needs on these machines (no systemd, no journald).
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}
	return p
}

// RunArgs are the `podman run` flags every container of the tests needs
// here: no network, and ulimits podman cannot take from this machine.
func RunArgs() []string {
	return []string{"--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
}

// FUSERunArgs are the `podman run` flags a container needs to mount FUSE
// file systems itself: the same as Docker's.
func FUSERunArgs() []string { return dockerd.FUSERunArgs() }

// Podman runs podman args and returns its output. A context without a
// deadline gets CallTimeout. podman gets an empty environment, the way
// podman and CRI-O run hooks.d hooks (no PATH either): the hooks, conmon
// and the runtime see nothing of the test's.
func (p *Podman) Podman(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return p.podmanStdin(ctx, nil, args...)
}

func (p *Podman) podmanStdin(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CallTimeout)
		defer cancel()
	}
	argv := slices.Concat(p.enter, []string{p.binary}, p.global, args)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// conmon must not keep podman's pipes; if it did, give up on them.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), errb.String(), err
}

// ImportImage imports name from dockerd's busybox-static root file system
// plus extraFiles (path in the image → host file), without a registry.
func (p *Podman) ImportImage(t testing.TB, name string, extraFiles map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ImportTimeout)
	defer cancel()
	testenv.RequireBinary(t, "busybox")
	write := func(w io.Writer) error { return dockerd.WriteRootfs(ctx, w, extraFiles) }
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	_, _, err := p.podmanStdin(ctx, pr, "import", "-", name)
	pr.CloseWithError(io.ErrClosedPipe) // unblock the writer if podman quit early
	if err != nil {
		t.Fatalf("podman: image %s: %v", name, err)
	}
	return name
}

// RunDetached runs `podman run -d` with RunArgs, extraArgs, image and cmd,
// and returns the container id.
func (p *Podman) RunDetached(ctx context.Context, image string, extraArgs []string, cmd ...string) (string, error) {
	args := append(append(append([]string{"run", "-d"}, RunArgs()...), extraArgs...), image)
	out, _, err := p.Podman(ctx, append(args, cmd...)...)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	p.mu.Lock()
	p.ids = append(p.ids, id)
	p.mu.Unlock()
	return id, nil
}

// IDs returns the ids of the containers RunDetached started, oldest first.
func (p *Podman) IDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ids)
}

// WaitLog polls the container's log until it contains substr and returns
// it; on ctx's end it returns the log so far and the error.
func (p *Podman) WaitLog(ctx context.Context, id, substr string) (string, error) {
	for {
		out, _, err := p.Podman(ctx, "logs", id)
		if err == nil && strings.Contains(out, substr) {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("container %.12s: %q not in its log: %w (last error %v)", id, substr, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// State is the part of `podman inspect`'s State the tests read.
type State struct {
	Status     string
	Running    bool
	Pid        int
	ConmonPid  int
	ExitCode   int
	Error      string
	FinishedAt time.Time
}

// Inspect returns the container's state.
func (p *Podman) Inspect(ctx context.Context, id string) (State, error) {
	out, _, err := p.Podman(ctx, "inspect", "--format", "{{json .State}}", id)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return State{}, fmt.Errorf("podman inspect %.12s: %w: %s", id, err, out)
	}
	return st, nil
}

// WaitStatus polls the container's state until its Status is status.
func (p *Podman) WaitStatus(ctx context.Context, id, status string) (State, error) {
	for {
		st, err := p.Inspect(ctx, id)
		if err == nil && st.Status == status {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("container %.12s: not %s: %w (last state %+v, error %v)", id, status, ctx.Err(), st, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// OwnConn records id as one of the test's FUSE connections, aborted at
// teardown while it is still that connection: its generation is taken
// and proven by id still being mounted in the mount table of pids (or a
// descendant's) after it was read, so a later abort cannot hit a
// connection that reused the id.
func (p *Podman) OwnConn(t testing.TB, id fuseconn.ConnID, pids ...int) fuseconn.ConnRef {
	t.Helper()
	ctl := fuseconn.NewControl("")
	if err := ctl.Ensure(); err != nil {
		if ok, _ := ctl.Mounted(); !ok { // another test may mount it meanwhile
			t.Fatal(err)
		}
	}
	gen, err := ctl.Generation(id)
	if err != nil {
		t.Fatal(err)
	}
	live, err := dockerd.FUSEConns(pids...)
	if err != nil || !slices.Contains(live, uint32(id)) {
		t.Fatalf("connection %s not mounted by processes %v (%v): not the test's", id, pids, err)
	}
	if now, err := ctl.Generation(id); err != nil || now != gen {
		t.Fatalf("connection %s changed while it was proven (%d → %d, %v)", id, gen, now, err)
	}
	ref := fuseconn.ConnRef{ID: id, Gen: gen}
	p.mu.Lock()
	p.conns = append(p.conns, ref)
	p.mu.Unlock()
	return ref
}

// runcRoot is runc's default state directory for root, where podman has
// it keep its containers' state.
const runcRoot = "/run/runc"

// HasRuntimeState reports whether runc still keeps state for container id.
func HasRuntimeState(id string) bool {
	_, err := os.Lstat(filepath.Join(runcRoot, id))
	return err == nil
}

// Leftovers returns the conmon processes of this podman and all their
// descendants. Only processes named conmon have their command line read
// (it names our directory), so a task stuck with its mm locked is never
// touched.
func (p *Podman) Leftovers() []int {
	fs := proc.NewFS("")
	pids, err := fs.PIDs()
	if err != nil {
		return nil
	}
	var conmons []int
	for _, pid := range pids {
		st, err := fs.Stat(context.Background(), pid)
		if err != nil || st.Comm != "conmon" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(fs.Root(), strconv.Itoa(pid), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(p.Dir+"/")) {
			conmons = append(conmons, pid)
		}
	}
	left, _ := fs.Descendants(conmons...)
	return left
}

// teardown removes every trace of this podman, each step bounded.
func (p *Podman) teardown(t testing.TB) {
	begin := time.Now()
	p.abortOwnConns(t)
	if p.global != nil {
		ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
		out, _, err := p.Podman(ctx, "ps", "--all", "--quiet", "--no-trunc")
		if err == nil && strings.TrimSpace(out) != "" {
			_, _, err = p.Podman(ctx, "rm", "--all", "--force", "--time", "0")
		}
		if err != nil {
			t.Logf("podman teardown: %v", err)
		}
		cancel()
	}
	p.killLeftovers(t)
	p.mu.Lock()
	ids := slices.Clone(p.ids)
	p.mu.Unlock()
	p.deleteRuntimeStates(t, ids)
	p.unmountAll(t)
	p.removeDir(t)
	p.removeSystemCache(t)
	t.Logf("podman teardown took %v", time.Since(begin).Round(time.Millisecond))
}

// abortOwnConns aborts those of the test's connections that are still the
// instance it recorded.
func (p *Podman) abortOwnConns(t testing.TB) {
	p.mu.Lock()
	refs := slices.Clone(p.conns)
	p.mu.Unlock()
	ctl := fuseconn.NewControl("")
	for _, ref := range refs {
		ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
		err := ctl.AbortInstance(ctx, ref)
		cancel()
		switch {
		case err == nil:
			t.Logf("podman teardown: aborted the test's FUSE connection %s", ref)
		case errors.Is(err, fuseconn.ErrNoSuchConnection), errors.Is(err, fuseconn.ErrConnectionReplaced):
		default:
			t.Errorf("podman teardown: %v", err)
		}
	}
}

// killLeftovers SIGKILLs what is left of our conmons and their children
// and waits, bounded, for them to go.
func (p *Podman) killLeftovers(t testing.TB) {
	left := p.Leftovers()
	if len(left) == 0 {
		return
	}
	t.Logf("podman teardown: killing leftover processes %v", left)
	for _, pid := range left {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	deadline := time.Now().Add(killWaitTimeout)
	for time.Now().Before(deadline) {
		if len(p.Leftovers()) == 0 {
			return
		}
		time.Sleep(pollInterval)
	}
	t.Errorf("podman teardown: processes %v survived SIGKILL for %v", p.Leftovers(), killWaitTimeout)
}

// Mounts returns the mount points below Dir in the test's mount table.
func (p *Podman) Mounts() ([]string, error) { return teardown.MountsBelow(p.Dir) }

// deleteRuntimeStates deletes what runc still keeps of containers ids (a
// podman rm that failed leaves it), bounded.
func (p *Podman) deleteRuntimeStates(t testing.TB, ids []string) {
	for _, id := range ids {
		if !HasRuntimeState(id) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), killWaitTimeout)
		out, err := exec.CommandContext(ctx, p.runc, "--root", runcRoot, "delete", "--force", id).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("podman teardown: runc delete --force %.12s: %v: %s", id, err, out)
		}
	}
}

// unmountAll lazily unmounts everything below Dir.
func (p *Podman) unmountAll(t testing.TB) { teardown.UnmountBelow(t, "podman teardown", p.Dir) }

// removeSystemCache removes the image copy cache podman made in
// systemContainersDir when that did not exist before: the machine is
// left as it was found. Directories are removed only when empty.
func (p *Podman) removeSystemCache(t testing.TB) {
	if !p.madeSystemDir {
		return
	}
	cache := filepath.Join(systemContainersDir, "cache")
	for _, path := range []string{filepath.Join(cache, "blob-info-cache-v1.boltdb"), cache, systemContainersDir} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Logf("podman teardown: %v", err)
			return
		}
	}
}

// removeDir removes Dir within rmdirTimeout.
func (p *Podman) removeDir(t testing.TB) {
	teardown.RemoveDir(t, "podman teardown", p.Dir, rmdirTimeout)
}
