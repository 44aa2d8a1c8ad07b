package cri_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/wrapper"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/cri"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// Runtime handlers of the test's containerd: both run runc 1.3, one
// through fuseguard's wrapper.
const (
	handlerFuseguard = "fuseguard"
	handlerRunc      = "runc"
)

// grace is StopContainer's timeout: the stop signal, then SIGKILL after it.
const grace = 2 * time.Second

// baselineRequest is crictl's request deadline for a stop without
// fuseguard (crictl adds grace): the hard deadline of the baseline.
const baselineRequest = 10 * time.Second

// exitTimeout bounds the wait for a container to be reported exited once
// its wedge is aborted.
const exitTimeout = 20 * time.Second

// wedge is a container of the CRI test: its command, and whether it wedges
// in FUSE when killed.
type wedge struct {
	name    string
	serve   []string // fusefixture serve's flags
	wedges  bool
	blocked bool // armed only once the daemon's own request is parked
}

var wedges = []wedge{
	{name: "healthy", serve: []string{"-mode", "healthy"}},
	// The seed's self-deadlock: a thread of the FUSE daemon waits on its
	// own mount (lookup of a name, or read of a file).
	{name: "self-lookup", serve: []string{"-mode", "lookup", "-self-read"}, wedges: true, blocked: true},
	{name: "self-read", serve: []string{"-mode", "read", "-self-read"}, wedges: true, blocked: true},
	// The seed's flush at exit: the daemon holds a file of its own mount,
	// and its exit's close sends a FLUSH nobody is left to answer.
	{name: "flush-at-exit", serve: []string{"-mode", "flush", "-hold"}, wedges: true},
}

// TestCRIStop drives containerd 2's CRI, as kubelet does, through crictl:
// RunPodSandbox → CreateContainer → StartContainer → StopContainer with a
// grace period → RemovePodSandbox, for a healthy container and for each
// wedge, with the pod's runtime handler running runc 1.3 through fuseguard
// and, as the baseline, runc 1.3 alone. The container's init is
// fusefixture init (PID 1 of the container's own PID namespace, kubelet's
// default), which dies of the stop signal; the FUSE daemon below it then
// wedges in its own exit or its own request.
//
// With fuseguard, StopContainer returns within its grace period plus the
// rescue's bound, the container has exited and the pod is removed. Without
// it, containerd's SIGKILL finds runc reporting the container stopped,
// StopContainer waits for an exit event until the client's deadline, the
// container stays running with its connection, and only aborting that
// connection lets it exit.
func TestCRIStop(t *testing.T) {
	testenv.RequireLong(t)
	runc := testenv.RequireTool(t, "runc-1.3", "bin/runc-1.3")
	fix := fixture.Binary(t)
	stateDir := testenv.StateDir(t)
	d := cri.Start(t, cri.Options{
		// The fuseguard handler is the one README documents:
		// deploy/containerd/fuseguard.toml, imported, with its path
		// rewritten as `make install` does for its prefix.
		Runtimes: map[string]string{handlerRunc: runc, handlerFuseguard: ""},
		Imports:  []string{deploySnippet(t, "fuseguard.toml", fgcmd.Runtime(t))},
		// The wrapper's environment comes from containerd through the shim:
		// its state directory and the real runtime. The node watcher stays
		// off: the rescue under test is the wrapper's.
		Env: []string{record.EnvStateDir + "=" + stateDir, wrapper.EnvRuntime + "=" + runc, "FUSEGUARD_WATCHER=0"},
	})
	d.ImportImage(t, cri.SandboxImage, []string{"sleep", "2147483647"}, nil)
	image := d.ImportImage(t, "docker.io/fgtest/fusefixture:1", []string{"sleep", "2147483647"}, map[string]string{"/fusefixture": fix})

	begin := time.Now()
	t.Run("group", func(t *testing.T) {
		for _, w := range wedges {
			for _, handler := range []string{handlerFuseguard, handlerRunc} {
				t.Run(w.name+"/"+handler, func(t *testing.T) {
					t.Parallel()
					stopPod(t, d, image, w, handler, stateDir)
				})
			}
		}
	})
	t.Logf("all pods: %v", time.Since(begin).Round(time.Millisecond))
	// Every runc call of containerd 2's shim (features, create, start,
	// kill, state, delete) was fully understood.
	if log := mustRead(filepath.Join(stateDir, "runtime.log")); strings.Contains(log, "not understood") || strings.Contains(log, "does not know") {
		t.Errorf("the wrapper did not understand containerd 2's argv:\n%s", log)
	}
}

func stopPod(t *testing.T, d *cri.Daemon, image string, w wedge, handler, stateDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	uid := podUID(t)
	pod, err := d.RunPod(ctx, cri.PodConfig{Name: w.name + "-" + handler, UID: uid}, handler)
	if err != nil {
		t.Fatal(err)
	}
	cmd := append([]string{"/fusefixture", "init", "--", "/fusefixture", "serve", "-mount", "/mnt"}, w.serve...)
	id, err := pod.CreateContainer(ctx, cri.ContainerConfig{Name: "w", Image: image, Command: cmd, FUSE: true})
	if err != nil {
		t.Fatal(err)
	}
	logs, err := pod.WaitLog(ctx, "w", "fusefixture: ready role=serve")
	if err != nil {
		t.Fatalf("%v\n--- container log ---\n%s", err, logs)
	}
	if w.blocked && !strings.Contains(logs, "fusefixture: blocked") {
		t.Fatalf("serve ready without its own request parked:\n%s", logs)
	}
	conn := uint32(fixture.ConnFromOutput(t, logs))
	st, err := d.Inspect(ctx, id)
	if err != nil || st.State != "CONTAINER_RUNNING" || st.Pid <= 0 {
		t.Fatalf("armed container: %+v, %v", st, err)
	}
	initPID := st.Pid
	if handler == handlerFuseguard {
		// containerd's CRI plugin annotates the container with its pod's
		// UID (io.kubernetes.cri.sandbox-uid); the hook records it.
		if rec, err := (record.Store{Dir: stateDir}).Load(id); err != nil || rec.PodUID != uid {
			t.Errorf("record of %s: pod UID %q (%v), want the sandbox's %q", id, recPodUID(rec), err, uid)
		}
	}
	// Whatever happens below, the wedge must not outlive the test: abort
	// the connection while it is still mounted in this container.
	d.OnCleanup(func() {
		if err := dockerd.AbortFUSEOf([]int{initPID}, conn); err != nil {
			t.Errorf("abort connection %d: %v", conn, err)
		}
	})
	if conns, err := dockerd.FUSEConns(initPID); err != nil || !slices.Contains(conns, conn) {
		t.Fatalf("FUSEConns(init %d) = %v (%v), want the fixture's connection %d", initPID, conns, err, conn)
	}

	request := cri.CallTimeout
	if w.wedges && handler == handlerRunc {
		request = baselineRequest
	}
	stopBegin := time.Now()
	stopErr := d.Stop(ctx, id, grace, request)
	took := time.Since(stopBegin)
	t.Logf("StopContainer(%s, timeout %v) under %s took %v: %v", w.name, grace, handler, took.Round(time.Millisecond), stopErr)

	if w.wedges && handler == handlerRunc {
		baseline(t, ctx, d, pod, id, initPID, conn, took, stopErr)
		return
	}
	if stopErr != nil {
		t.Fatalf("StopContainer: %v\n--- containerd log ---\n%s", stopErr, d.LogTail(20))
	}
	if bound := grace + (killer.Options{}).Bound(); w.wedges && took > bound {
		t.Errorf("StopContainer of %s returned after %v, bound %v (grace + fuseguard's rescue)", w.name, took, bound)
	}
	if st, err := d.Inspect(ctx, id); err != nil || st.State != "CONTAINER_EXITED" {
		t.Errorf("after StopContainer: %+v, %v; want exited", st, err)
	}
	if w.wedges {
		// The wrapper's kill did it: its rescue found init stuck and
		// aborted the container's connection.
		lines := fgcmd.LogLines(filepath.Join(stateDir, "runtime.log"), id)
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, `"outcome":"recovered"`) }) {
			t.Errorf("no recovered rescue of %s in runtime.log:\n%s", id, strings.Join(lines, "\n"))
		}
	}
	removePod(t, ctx, d, pod)
}

// podUID is a fresh pod UID in the form the API server writes.
func podUID(t *testing.T) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func recPodUID(rec *record.Record) string {
	if rec == nil {
		return ""
	}
	return rec.PodUID
}

// baseline asserts containerd's failure without fuseguard and then ends
// the wedge by aborting the test's own connection.
func baseline(t *testing.T, ctx context.Context, d *cri.Daemon, pod *cri.Pod, id string, initPID int, conn uint32, took time.Duration, stopErr error) {
	if stopErr == nil {
		t.Fatal("StopContainer of a wedged container succeeded under plain runc; the baseline no longer shows the bug")
	}
	if !strings.Contains(stopErr.Error(), "DeadlineExceeded") {
		t.Fatalf("StopContainer failed, but not at the client's deadline: %v", stopErr)
	}
	// crictl's deadline is its request timeout plus the grace period: the
	// stop waited for it, it did not fail early.
	if took < baselineRequest {
		t.Errorf("StopContainer failed after %v, before the client's deadline %v", took, baselineRequest+grace)
	}
	st, err := d.Inspect(ctx, id)
	if err != nil || st.State != "CONTAINER_RUNNING" {
		t.Fatalf("after the failed stop: %+v, %v; want still running", st, err)
	}
	if conns, err := dockerd.FUSEConns(initPID); err != nil || !slices.Contains(conns, conn) {
		t.Fatalf("FUSEConns(init %d) after the failed stop = %v (%v), want %d still there", initPID, conns, err, conn)
	}
	abortBegin := time.Now()
	if err := dockerd.AbortFUSEOf([]int{initPID}, conn); err != nil {
		t.Fatal(err)
	}
	for {
		st, err = d.Inspect(ctx, id)
		if err == nil && st.State == "CONTAINER_EXITED" {
			break
		}
		if time.Since(abortBegin) > exitTimeout {
			t.Fatalf("%v after the abort: %+v, %v; want exited", exitTimeout, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("container exited %v after the abort", time.Since(abortBegin).Round(time.Millisecond))
	removePod(t, ctx, d, pod)
}

func removePod(t *testing.T, ctx context.Context, d *cri.Daemon, pod *cri.Pod) {
	begin := time.Now()
	if err := pod.Remove(ctx); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	t.Logf("RemovePodSandbox took %v", time.Since(begin).Round(time.Millisecond))
	pods, err := d.Pods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(pods, pod.ID) {
		t.Errorf("pod %.12s still listed after RemovePodSandbox", pod.ID)
	}
}

// deploySnippet returns a copy of deploy/containerd/name whose
// /usr/local/bin/fuseguard-runtime is runtime.
func deploySnippet(t *testing.T, name, runtime string) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy/containerd", name))
	if err != nil {
		t.Fatal(err)
	}
	const installed = "'/usr/local/bin/fuseguard-runtime'"
	if n := strings.Count(string(b), installed); n != 1 {
		t.Fatalf("deploy/containerd/%s names %s %d times, want once", name, installed, n)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), installed, fmt.Sprintf("%q", runtime), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustRead(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestDeployDefaultSnippet merges deploy/containerd/fuseguard-default.toml
// into a config that sets another runc option, as an operator's would, and
// reads containerd 2's merged config back (`containerd config dump`): the
// default "runc" handler runs fuseguard's wrapper and keeps the operator's
// option.
func TestDeployDefaultSnippet(t *testing.T) {
	containerd := testenv.RequireTool(t, "containerd", "bin/containerd")
	dir := t.TempDir()
	main := filepath.Join(dir, "config.toml")
	conf := fmt.Sprintf("version = 3\nroot = %q\nstate = %q\nimports = [%q]\n"+
		"[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), deploySnippet(t, "fuseguard-default.toml", "/opt/fg/fuseguard-runtime"))
	if err := os.WriteFile(main, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cri.CallTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, containerd, "--config", main, "config", "dump").Output()
	if err != nil {
		t.Fatalf("containerd config dump: %v", err)
	}
	options := tomlTable(string(out), "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]")
	for _, want := range []string{"BinaryName = '/opt/fg/fuseguard-runtime'", "SystemdCgroup = true"} {
		if !slices.Contains(options, want) {
			t.Errorf("merged runc options %q lack %q\n--- config dump ---\n%s", options, want, out)
		}
	}
}

// tomlTable returns the trimmed key lines of the table header in a
// config dump, up to the next table.
func tomlTable(dump, header string) []string {
	var lines []string
	in := false
	for line := range strings.Lines(dump) {
		line = strings.TrimSpace(line)
		switch {
		case line == header:
			in = true
		case strings.HasPrefix(line, "["):
			in = false
		case in && line != "":
			lines = append(lines, line)
		}
	}
	return lines
}
