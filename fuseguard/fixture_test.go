package fuseguard

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
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
	fx, err := mountFixtureAt(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mount: %v\n", err)
		return 3
	}
	fmt.Printf("ready %d\n", fx.conn)
	io.Copy(io.Discard, os.Stdin)
	fx.close()
	return 0
}

// fixtureRoot is a go-fuse file system with a healthy file "hello" and a
// file "block" whose READ is answered only when release is closed.
type fixtureRoot struct {
	fs.Inode
	release chan struct{}
}

func (r *fixtureRoot) OnAdd(ctx context.Context) {
	hello := &fs.MemRegularFile{Data: []byte("hello\n"), Attr: fuse.Attr{Mode: 0o444}}
	r.AddChild("hello", r.NewPersistentInode(ctx, hello, fs.StableAttr{Mode: syscall.S_IFREG}), false)
	block := &blockFile{release: r.release}
	r.AddChild("block", r.NewPersistentInode(ctx, block, fs.StableAttr{Mode: syscall.S_IFREG}), false)
}

type blockFile struct {
	fs.Inode
	release <-chan struct{}
}

var (
	_ fs.NodeGetattrer = (*blockFile)(nil)
	_ fs.NodeOpener    = (*blockFile)(nil)
	_ fs.NodeReader    = (*blockFile)(nil)
)

func (f *blockFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = 4096
	return 0
}

func (f *blockFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	// Direct I/O: the READ goes to the daemon, not through the page cache.
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

// Read ignores ctx on purpose: an INTERRUPT must not answer it, as a hung
// daemon would not.
func (f *blockFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	<-f.release
	return fuse.ReadResultData(nil), 0
}

type fixture struct {
	dir     string
	conn    ConnID // minor(st_dev) of the mount root, computed without fuseguard
	server  *fuse.Server
	release chan struct{}
	once    sync.Once
	closed  sync.Once
}

func mountFixtureAt(dir string) (*fixture, error) {
	release := make(chan struct{})
	server, err := fs.Mount(dir, &fixtureRoot{release: release}, &fs.Options{
		MountOptions: fuse.MountOptions{Name: fixtureName, DirectMount: true},
	})
	if err != nil {
		return nil, err
	}
	fx := &fixture{dir: dir, server: server, release: release}
	// The mount is healthy and served by this process: stat is safe.
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		fx.close()
		return nil, err
	}
	fx.conn = ConnID(unix.Minor(st.Dev))
	return fx, nil
}

// mountFixture mounts a fixture on a temp dir, unmounted in Cleanup.
func mountFixture(t *testing.T) *fixture {
	t.Helper()
	fx, err := mountFixtureAt(t.TempDir())
	if err != nil {
		t.Fatalf("mount go-fuse fixture: %v", err)
	}
	t.Cleanup(func() {
		if err := fx.close(); err != nil {
			t.Errorf("unmount fixture: %v", err)
		}
	})
	return fx
}

// unblock answers every blocked READ.
func (fx *fixture) unblock() { fx.once.Do(func() { close(fx.release) }) }

// close unblocks the handlers and unmounts, lazily when the server does not
// finish in time.
func (fx *fixture) close() (err error) {
	fx.closed.Do(func() {
		fx.unblock()
		done := make(chan error, 1)
		go func() { done <- fx.server.Unmount() }()
		select {
		case err = <-done:
			if err == nil {
				return
			}
		case <-time.After(10 * time.Second):
			err = fmt.Errorf("server.Unmount of %s timed out", fx.dir)
		}
		if derr := unix.Unmount(fx.dir, unix.MNT_DETACH); derr != nil && derr != unix.EINVAL {
			err = fmt.Errorf("%w; lazy unmount: %w", err, derr)
		}
	})
	return err
}

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
