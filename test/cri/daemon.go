package cri

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/teardown"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// Deadlines of the harness.
const (
	// StartTimeout bounds the wait for containerd's CRI service to answer.
	StartTimeout = 60 * time.Second
	// CallTimeout bounds one crictl or ctr call: crictl's own request
	// deadline (--timeout) and the process's.
	CallTimeout = 30 * time.Second
)

// SandboxImage is the pod sandbox ("pause") image of every daemon: the
// first image a test imports must be this one (ImportImage).
const SandboxImage = "docker.io/fgtest/pause:1"

// Options configure the containerd that Start launches.
type Options struct {
	// Runtimes maps a CRI runtime handler name to the runtime binary the
	// runc shim runs for it (runc options BinaryName; "" leaves it to an
	// import). "runc" is the default handler, used by pods that name none.
	Runtimes map[string]string
	// Imports are config files containerd merges into the one Start
	// writes (config `imports`), such as deploy/containerd's snippets.
	Imports []string
	// Env is appended to containerd's environment; the shims, and so the
	// runtimes, inherit it.
	Env []string
}

// Daemon is a running private containerd.
type Daemon struct {
	// Dir holds everything the daemon owns.
	Dir string
	// Socket is containerd's gRPC socket (CRI and containerd API).
	Socket string
	// LogPath receives containerd's log; LogDir the containers' logs.
	LogPath, LogDir string
	// RuncRoot is the runc state root of every handler (runc options
	// Root), below which runc keeps one directory per namespace.
	RuncRoot string
	// Pid is containerd's pid.
	Pid int

	containerd, crictl, ctr string

	cmd    *exec.Cmd
	exited chan struct{}

	cleanups teardown.Cleanups
}

// Start launches a private containerd configured by opts and registers its
// teardown with t.Cleanup.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "busybox")
	d := &Daemon{
		containerd: testenv.RequireTool(t, "containerd", "bin/containerd"),
		crictl:     testenv.RequireTool(t, "crictl", "bin/crictl"),
		ctr:        testenv.RequireTool(t, "ctr", "bin/ctr"),
		exited:     make(chan struct{}),
	}
	shim := testenv.RequireTool(t, "containerd-shim-runc-v2", "bin/containerd-shim-runc-v2")

	// Short: shim sockets live below it, within sun_path's 108 bytes.
	dir, err := os.MkdirTemp("/tmp", "fgc-")
	if err != nil {
		t.Fatalf("containerd: %v", err)
	}
	d.Dir = dir
	d.Socket = filepath.Join(dir, "c.sock")
	d.LogPath = filepath.Join(dir, "containerd.log")
	d.LogDir = filepath.Join(dir, "logs")
	d.RuncRoot = filepath.Join(dir, "runc")
	t.Cleanup(func() { d.teardown(t) })
	for _, p := range []string{d.LogDir, d.RuncRoot} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatalf("containerd: %v", err)
		}
	}
	// crictl reads a config file (or the host's /etc/crictl.yaml) first.
	crictlConf := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\n", d.Socket, d.Socket)
	if err := os.WriteFile(filepath.Join(dir, "crictl.yaml"), []byte(crictlConf), 0o600); err != nil {
		t.Fatalf("containerd: %v", err)
	}
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(d.config(opts)), 0o600); err != nil {
		t.Fatalf("containerd: %v", err)
	}
	logf, err := os.Create(d.LogPath)
	if err != nil {
		t.Fatalf("containerd: %v", err)
	}
	defer logf.Close()
	d.cmd = exec.Command(d.containerd, "--config", conf)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// containerd finds containerd-shim-runc-v2 on PATH: ours comes first.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PATH=") })
	d.cmd.Env = append(env, "PATH="+filepath.Dir(shim)+":"+os.Getenv("PATH"))
	d.cmd.Env = append(d.cmd.Env, opts.Env...)
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("containerd: start: %v", err)
	}
	d.Pid = d.cmd.Process.Pid
	go func() {
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	begin := time.Now()
	if err := d.waitReady(StartTimeout); err != nil {
		t.Fatalf("containerd: %v\n--- containerd log (tail) ---\n%s", err, d.LogTail(40))
	}
	t.Logf("containerd %d ready in %v at %s", d.Pid, time.Since(begin).Round(time.Millisecond), d.Socket)
	return d
}

// config renders config.toml (version 3, containerd 2's schema).
func (d *Daemon) config(opts Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version = 3\nroot = %q\nstate = %q\n", filepath.Join(d.Dir, "root"), filepath.Join(d.Dir, "state"))
	if len(opts.Imports) > 0 {
		quoted := make([]string, len(opts.Imports))
		for i, p := range opts.Imports {
			quoted[i] = fmt.Sprintf("%q", p)
		}
		fmt.Fprintf(&b, "imports = [%s]\n", strings.Join(quoted, ", "))
	}
	// NRI's socket is host-wide; the other snapshotters need what a test
	// machine lacks.
	b.WriteString(`disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs", "io.containerd.snapshotter.v1.blockfile"]` + "\n")
	fmt.Fprintf(&b, "[grpc]\n  address = %q\n", d.Socket)
	fmt.Fprintf(&b, "[plugins.'io.containerd.shim.v1.manager']\n  socket_dir = %q\n", filepath.Join(d.Dir, "s"))
	fmt.Fprintf(&b, "[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'native'\n")
	fmt.Fprintf(&b, "  [plugins.'io.containerd.cri.v1.images'.pinned_images]\n    sandbox = %q\n", SandboxImage)
	// The machines this runs on may not lower a process's oom_score_adj,
	// which containerd asks for its sandboxes unless restricted.
	b.WriteString("[plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = true\n")
	b.WriteString("  [plugins.'io.containerd.cri.v1.runtime'.containerd]\n    default_runtime_name = 'runc'\n")
	for _, name := range slices.Sorted(maps.Keys(opts.Runtimes)) {
		section := "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes." + name
		fmt.Fprintf(&b, "[%s]\n  runtime_type = 'io.containerd.runc.v2'\n", section)
		fmt.Fprintf(&b, "  [%s.options]\n    Root = %q\n", section, d.RuncRoot)
		if bin := opts.Runtimes[name]; bin != "" {
			fmt.Fprintf(&b, "    BinaryName = %q\n", bin)
		}
	}
	return b.String()
}

// waitReady polls `crictl info` until the CRI service answers, containerd
// exits or timeout passes.
func (d *Daemon) waitReady(timeout time.Duration) error {
	return dockerd.PollReady(d.exited, timeout, 5*time.Second, 100*time.Millisecond,
		func(ctx context.Context) error { _, err := d.Crictl(ctx, "info"); return err },
		func() error { return fmt.Errorf("containerd exited during start-up: %v", d.cmd.ProcessState) },
		func(last error) error {
			return fmt.Errorf("no CRI answer on %s within %v: %w", d.Socket, timeout, last)
		})
}

// OnCleanup registers f to run at teardown before any pod is removed,
// newest first: where a test aborts the FUSE connections it wedged.
func (d *Daemon) OnCleanup(f func()) {
	d.cleanups.Add(f)
}

// LogTail returns the last n lines of containerd's log.
func (d *Daemon) LogTail(n int) string { return teardown.LogTail(d.LogPath, n) }
