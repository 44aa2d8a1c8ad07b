package fuseconn

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/wedgefs"
)

// The test binary doubles as the fixture processes (see TestMain).
const (
	helperEnv     = "FUSEGUARD_TEST_HELPER"
	helperPathEnv = "FUSEGUARD_TEST_PATH"
	fixtureName   = "fgtest"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "read":
		os.Exit(helperRead(os.Getenv(helperPathEnv)))
	case "mountns":
		os.Exit(helperMountNS(os.Getenv(helperPathEnv)))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(100)
	}
}

// helperRead reads path with raw syscalls: os.File could park a FUSE file in
// the netpoller instead of blocking in the kernel.
func helperRead(path string) int {
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "open: %v\n", err)
		return 3
	}
	// Tell the parent that every request before the READ is answered.
	fmt.Println("opened")
	buf := make([]byte, 4096)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "read: %v\n", err)
		return 2
	}
	fmt.Printf("read %d bytes\n", n)
	return 0
}

// helperMountNS serves a fixture mount in its own mount namespace (the
// parent unshared it), reports "ready <conn>" and serves until stdin closes.
func helperMountNS(dir string) int {
	fx, err := mountFixtureAt(dir, wedgefs.ModeHealthy)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mount: %v\n", err)
		return 3
	}
	fmt.Printf("ready %d\n", fx.conn)
	io.Copy(io.Discard, os.Stdin)
	fx.srv.Unmount()
	return 0
}

// fixture is a wedgefs mount served by the test process.
type fixture struct {
	dir  string
	conn ConnID // from the mount table, computed without fuseguard
	srv  *wedgefs.Server
}

func mountFixtureAt(dir string, mode wedgefs.Mode) (*fixture, error) {
	srv, err := wedgefs.Mount(dir, wedgefs.Options{Mode: mode, Name: fixtureName})
	if err != nil {
		return nil, err
	}
	conn, err := srv.Conn()
	if err != nil {
		_ = srv.Unmount()
		return nil, err
	}
	fx := &fixture{dir: srv.Dir(), conn: ConnID(conn), srv: srv}
	fx.settle()
	return fx, nil
}

// settle waits, at most a second, until the connection has no request in
// flight: go-fuse's mount ends with a close whose RELEASE the kernel sends
// in the background. It reads fusectl by hand, not through Control; without
// fusectl there is nothing to wait on.
func (fx *fixture) settle() {
	waiting := filepath.Join(DefaultFusectlDir, strconv.FormatUint(uint64(fx.conn), 10), "waiting")
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(waiting)
		if err != nil || strings.TrimSpace(string(b)) == "0" {
			return
		}
	}
}

// mountFixture mounts a fixture in mode on a temp dir, unmounted in
// Cleanup.
func mountFixture(t *testing.T, mode wedgefs.Mode) *fixture {
	t.Helper()
	fx, err := mountFixtureAt(t.TempDir(), mode)
	if err != nil {
		t.Fatalf("mount wedgefs fixture: %v", err)
	}
	t.Cleanup(func() {
		if err := fx.srv.Unmount(); err != nil {
			t.Errorf("unmount fixture: %v", err)
		}
	})
	return fx
}

// unblock answers every parked request.
func (fx *fixture) unblock() { fx.srv.Release() }

// child is a fixture process started from the test binary.
type child struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stdin  io.WriteCloser
	stderr *lockedBuffer
	done   chan error // receives cmd.Wait's result once
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChild runs the test binary as helper mode on path. beforeKill runs
// in Cleanup before the child is killed: a child in an uninterruptible
// FUSE wait dies only once its request is answered.
func startChild(t *testing.T, mode, path string, attr *syscall.SysProcAttr, beforeKill func()) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperPathEnv+"="+path)
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	attr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr = attr
	c := &child{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	c.stdout = bufio.NewReader(stdout)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", mode, err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		c.stdin.Close()
		if beforeKill != nil {
			beforeKill()
		}
		cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("helper %s (pid %d) not reaped 10s after SIGKILL", mode, cmd.Process.Pid)
		}
	})
	return c
}

// wait waits for the child to exit, at most d; exited is false on timeout.
func (c *child) wait(d time.Duration) (exited bool, err error) {
	select {
	case err := <-c.done:
		c.done <- err // keep it for Cleanup
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

// readLine reads one line of the child's stdout, at most d.
func (c *child) readLine(d time.Duration) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.stdout.ReadString('\n')
		ch <- result{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(d):
		return "", fmt.Errorf("no line from helper within %v", d)
	}
}

// hostHasDev reports whether /proc/1/mountinfo lists a mount of 0:conn,
// read without fuseguard's parser.
func hostHasDev(t *testing.T, conn ConnID) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/1/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	want := "0:" + strconv.FormatUint(uint64(conn), 10)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == want {
			return true
		}
	}
	return false
}
