package dockerd

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/fuseguard/fuseguard/test/teardown"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// Deadlines of the harness. Docker 20.10 itself gives up on a kill after
// about 12 s, so nothing here waits much longer than that for one step.
const (
	// StartTimeout bounds the wait for the new daemon to answer _ping.
	StartTimeout = 60 * time.Second
	// CallTimeout bounds one CLI or API call whose context has no deadline.
	CallTimeout = 30 * time.Second
	// ImportTimeout bounds one `docker import`.
	ImportTimeout = 60 * time.Second
)

// Options configure the daemon that Start launches.
type Options struct {
	// Runtimes maps a runtime name to the path of its binary; each one is
	// written into daemon.json "runtimes".
	Runtimes map[string]string
	// DefaultRuntime becomes daemon.json "default-runtime" when not empty.
	DefaultRuntime string
	// ExtraEnv is appended to dockerd's environment; its containerd and
	// the shims, which run the runtimes, inherit it.
	ExtraEnv []string
	// Debug turns on dockerd's debug log.
	Debug bool
}

// Daemon is a running private dockerd. Its methods are safe for concurrent
// use.
type Daemon struct {
	// Dir holds everything the daemon owns: config, socket, log, data-root
	// and exec-root.
	Dir string
	// DataRoot and ExecRoot are the daemon's data-root and exec-root.
	DataRoot, ExecRoot string
	// Socket is the path of the daemon's API socket.
	Socket string
	// LogPath is the file that receives dockerd's (and containerd's) log.
	LogPath string
	// Pid is dockerd's pid.
	Pid int

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd.Wait returned
	cliDir string        // DOCKER_CONFIG of the CLI, kept apart from ~/.docker
	docker string        // path of the docker CLI

	mu       sync.Mutex
	client   *client.Client
	cleanups teardown.Cleanups
}

// Start launches a private dockerd configured by opts and registers its
// teardown with t.Cleanup. It fails t, with the tail of the daemon's log,
// when the daemon does not answer within StartTimeout.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	testenv.RequireRoot(t)
	dockerdPath := testenv.RequireBinary(t, "dockerd")
	testenv.RequireBinary(t, "containerd")
	testenv.RequireBinary(t, "containerd-shim-runc-v2")
	testenv.RequireBinary(t, "runc")
	cli := cliPath(t)

	dir, err := os.MkdirTemp(shortTempDir(), "fgd-")
	if err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	d := &Daemon{
		Dir:      dir,
		DataRoot: filepath.Join(dir, "data"),
		ExecRoot: filepath.Join(dir, "exec"),
		Socket:   filepath.Join(dir, "docker.sock"),
		LogPath:  filepath.Join(dir, "dockerd.log"),
		exited:   make(chan struct{}),
		cliDir:   filepath.Join(dir, "cli"),
		docker:   cli,
	}
	// Registered before anything can fail, so a half-started daemon is
	// torn down too.
	t.Cleanup(func() { d.teardown(t) })

	for _, p := range []string{d.DataRoot, d.ExecRoot, d.cliDir} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatalf("dockerd: %v", err)
		}
	}
	conf, err := d.config(opts)
	if err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	confPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	logf, err := os.Create(d.LogPath)
	if err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	defer logf.Close() // the child holds its own copy

	d.cmd = exec.Command(dockerdPath, "--config-file", confPath)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(cleanEnv(), opts.ExtraEnv...)
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("dockerd: start %s: %v", dockerdPath, err)
	}
	d.Pid = d.cmd.Process.Pid
	go func() {
		_ = d.cmd.Wait()
		close(d.exited)
	}()

	begin := time.Now()
	if err := d.waitReady(StartTimeout); err != nil {
		t.Fatalf("dockerd: %v\n--- dockerd log (tail) ---\n%s", err, d.LogTail(40))
	}
	t.Logf("dockerd %d ready in %v at %s", d.Pid, time.Since(begin).Round(time.Millisecond), d.Host())
	return d
}

// config renders daemon.json. Everything the daemon writes lives under
// d.Dir; its managed containerd puts its state under exec-root/containerd
// and its root under data-root/containerd.
func (d *Daemon) config(opts Options) ([]byte, error) {
	conf := map[string]any{
		"data-root":        d.DataRoot,
		"exec-root":        d.ExecRoot,
		"pidfile":          filepath.Join(d.Dir, "docker.pid"),
		"hosts":            []string{"unix://" + d.Socket},
		"iptables":         false,
		"ip-forward":       false,
		"ip-masq":          false,
		"bridge":           "none",
		"userland-proxy":   false,
		"storage-driver":   "vfs",
		"log-driver":       "json-file",
		"shutdown-timeout": 5,
		"features":         map[string]bool{"buildkit": false},
		"debug":            opts.Debug,
	}
	if len(opts.Runtimes) > 0 {
		rt := map[string]map[string]string{}
		for name, path := range opts.Runtimes {
			if name == "" || path == "" {
				return nil, fmt.Errorf("runtime %q: empty name or path %q", name, path)
			}
			rt[name] = map[string]string{"path": path}
		}
		conf["runtimes"] = rt
	}
	if opts.DefaultRuntime != "" {
		conf["default-runtime"] = opts.DefaultRuntime
	}
	return json.MarshalIndent(conf, "", "  ")
}

// waitReady polls _ping on the socket until it answers 200, dockerd exits
// or timeout passes.
func (d *Daemon) waitReady(timeout time.Duration) error {
	hc := d.rawHTTP()
	return PollReady(d.exited, timeout, 2*time.Second, 50*time.Millisecond, func(ctx context.Context) error { return ping(ctx, hc) },
		func() error { return fmt.Errorf("dockerd exited during start-up: %v", d.cmd.ProcessState) },
		func(last error) error {
			return fmt.Errorf("no answer to _ping on %s within %v: %w", d.Socket, timeout, last)
		})
}

// PollReady calls probe, each call bounded by probeTimeout and every pause
// apart, until it succeeds (nil), exited is closed (gone()), or timeout
// passes (late(the last probe's error)).
func PollReady(exited <-chan struct{}, timeout, probeTimeout, pause time.Duration, probe func(context.Context) error, gone func() error, late func(error) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return gone()
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		last = probe(ctx)
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(pause)
	}
	return late(last)
}

// rawHTTP is an HTTP client that dials the daemon's socket.
func (d *Daemon) rawHTTP() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", d.Socket)
		},
	}}
}

func ping(ctx context.Context, hc *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("_ping: %s", resp.Status)
	}
	return nil
}

// Host is the daemon's address in DOCKER_HOST form.
func (d *Daemon) Host() string { return "unix://" + d.Socket }

// Client returns a Docker API client for this daemon (one per Daemon,
// closed at teardown). It negotiates the API version, so a newer client
// library talks to Docker 20.10.
func (d *Daemon) Client() *client.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client == nil {
		c, err := client.NewClientWithOpts(client.WithHost(d.Host()), client.WithAPIVersionNegotiation())
		if err != nil {
			// Only malformed options fail here, and ours are fixed.
			panic(fmt.Sprintf("dockerd: client: %v", err))
		}
		d.client = c
	}
	return d.client
}

// OnCleanup registers f to run at teardown before any container is
// removed, in reverse order of registration: the place for a test to abort
// the FUSE connections it wedged on purpose.
func (d *Daemon) OnCleanup(f func()) {
	d.cleanups.Add(f)
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string { return teardown.LogTail(d.LogPath, n) }

// shortTempDir picks a parent for the daemon's directory that keeps
// socket paths (exec-root/containerd/containerd.sock.ttrpc and the like)
// well below the 108-byte limit of sun_path.
func shortTempDir() string {
	if dir := os.TempDir(); len(dir) <= 24 {
		return dir
	}
	return "/tmp"
}

// cleanEnv is the test's environment without Docker client settings that
// could point the daemon's children elsewhere.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// cliPath prefers Debian's /usr/bin/docker, the CLI that matches the
// daemon, over any other docker on PATH.
func cliPath(t testing.TB) string {
	t.Helper()
	const debian = "/usr/bin/docker"
	if fi, err := os.Stat(debian); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return debian
	}
	return testenv.RequireBinary(t, "docker")
}
