package fuseconn

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/test/testenv"
	"github.com/fuseguard/fuseguard/test/wedgefs"
)

// abortedErr reports whether a helper's stderr shows an aborted connection:
// ENOTCONN, or ECONNABORTED when the daemon negotiated FUSE_ABORT_ERROR
// (go-fuse does).
func abortedErr(stderr string) bool {
	return strings.Contains(stderr, syscall.ENOTCONN.Error()) || strings.Contains(stderr, syscall.ECONNABORTED.Error())
}

// ensureFusectl mounts fusectl on a fresh temp dir, unmounted in Cleanup.
func ensureFusectl(t *testing.T) Control {
	t.Helper()
	ctl := NewControl(filepath.Join(t.TempDir(), "sub", "fusectl"))
	if err := ctl.Ensure(); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(ctl.Dir, 0); err != nil {
			t.Errorf("unmount fusectl on %s: %v", ctl.Dir, err)
			unix.Unmount(ctl.Dir, unix.MNT_DETACH)
		}
	})
	return ctl
}

// mountsOn counts the mounts of fstype on dir in our mount table.
func mountsOn(t *testing.T, dir, fstype string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if ok && strings.Fields(pre)[4] == dir && strings.Fields(post)[0] == fstype {
			n++
		}
	}
	return n
}

func TestNewControl(t *testing.T) {
	if got := NewControl("").Dir; got != DefaultFusectlDir {
		t.Errorf("NewControl(\"\").Dir = %q, want %q", got, DefaultFusectlDir)
	}
	if got := NewControl("/x").Dir; got != "/x" {
		t.Errorf("NewControl(/x).Dir = %q", got)
	}
}

func TestControlEnsure(t *testing.T) {
	testenv.RequireFUSE(t) // fusectl comes with the fuse module

	// Before Ensure nothing is there: no operation may mistake that for
	// "no such connection".
	pre := NewControl(filepath.Join(t.TempDir(), "absent"))
	if err := pre.Abort(context.Background(), 1); !errors.Is(err, ErrFusectlUnavailable) {
		t.Errorf("Abort without fusectl = %v, want ErrFusectlUnavailable", err)
	}
	if _, err := pre.List(); !errors.Is(err, ErrFusectlUnavailable) {
		t.Errorf("List without fusectl = %v, want ErrFusectlUnavailable", err)
	}

	ctl := ensureFusectl(t)
	var st unix.Statfs_t
	if err := unix.Statfs(ctl.Dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != 0x65735543 { // FUSE_CTL_SUPER_MAGIC, linux/magic.h
		t.Fatalf("statfs(%s).f_type = %#x, want fusectl", ctl.Dir, st.Type)
	}
	if n := mountsOn(t, ctl.Dir, "fusectl"); n != 1 {
		t.Fatalf("%d fusectl mounts on %s after Ensure, want 1", n, ctl.Dir)
	}
	if err := ctl.Ensure(); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if n := mountsOn(t, ctl.Dir, "fusectl"); n != 1 {
		t.Fatalf("%d fusectl mounts on %s after a second Ensure, want 1", n, ctl.Dir)
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewControl(filepath.Join(file, "fusectl")).Ensure(); !errors.Is(err, ErrFusectlUnavailable) {
		t.Errorf("Ensure below a regular file = %v, want ErrFusectlUnavailable", err)
	}
}

// TestControlAbort wedges a child process in a FUSE READ that the daemon
// never answers, and aborts the connection.
func TestControlAbort(t *testing.T) {
	testenv.RequireFUSE(t)
	ctl := ensureFusectl(t)
	fx := mountFixture(t, wedgefs.ModeRead)

	ids, err := ctl.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, fx.conn) || !ctl.Exists(fx.conn) {
		t.Fatalf("connection %d not live: List = %v", fx.conn, ids)
	}
	if n, err := ctl.Waiting(fx.conn); err != nil || n != 0 {
		t.Fatalf("Waiting on a healthy mount = %d, %v; want 0", n, err)
	}

	reader := startChild(t, "read", filepath.Join(fx.dir, wedgefs.DataFile), nil, fx.unblock)
	// Only after the open is the waiting request the READ.
	if line, err := reader.readLine(10 * time.Second); line != "opened" {
		t.Fatalf("reader said %q, %v; stderr: %s", line, err, reader.stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := ctl.Waiting(fx.conn)
		if err != nil {
			t.Fatal(err)
		}
		if n >= 1 {
			break
		}
		if exited, err := reader.wait(0); exited {
			t.Fatalf("reader exited before blocking: %v; stderr: %s", err, reader.stderr)
		}
		if time.Now().After(deadline) {
			t.Fatal("no request waiting on the connection after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ctl.Abort(ctx, fx.conn); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	exited, err := reader.wait(5 * time.Second)
	if !exited {
		t.Fatal("reader still blocked 5s after Abort")
	}
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !abortedErr(reader.stderr.String()) {
		t.Fatalf("reader exited with %v, stderr %q; want a failed read with ENOTCONN or ECONNABORTED", err, reader.stderr)
	}
	if n, err := ctl.Waiting(fx.conn); err != nil || n != 0 {
		t.Fatalf("Waiting after Abort = %d, %v; want 0", n, err)
	}
	if err := ctl.Abort(ctx, fx.conn); err != nil {
		t.Fatalf("second Abort: %v", err)
	}

	// Minor numbers are 20 bits: this id never exists.
	const never = ConnID(math.MaxUint32)
	if ctl.Exists(never) {
		t.Fatalf("connection %d exists", never)
	}
	if err := ctl.Abort(ctx, never); !errors.Is(err, ErrNoSuchConnection) {
		t.Fatalf("Abort(%d) = %v, want ErrNoSuchConnection", never, err)
	}
	if _, err := ctl.Waiting(never); !errors.Is(err, ErrNoSuchConnection) {
		t.Fatalf("Waiting(%d) = %v, want ErrNoSuchConnection", never, err)
	}
}

// TestControlAbortHealthy aborts a connection nobody waits on: the abort
// takes effect at once and later requests fail with ENOTCONN.
func TestControlAbortHealthy(t *testing.T) {
	testenv.RequireFUSE(t)
	ctl := ensureFusectl(t)
	fx := mountFixture(t, wedgefs.ModeHealthy)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ctl.Abort(ctx, fx.conn); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	// Read in a child: never touch a FUSE mount from the test process.
	reader := startChild(t, "read", filepath.Join(fx.dir, wedgefs.DataFile), nil, fx.unblock)
	exited, _ := reader.wait(5 * time.Second)
	if !exited {
		t.Fatal("reader of an aborted mount did not exit within 5s")
	}
	if !abortedErr(reader.stderr.String()) {
		t.Fatalf("reader of an aborted mount: stderr %q, want ENOTCONN or ECONNABORTED", reader.stderr)
	}
}

// TestControlInstanceReused proves on the kernel what AbortInstance relies
// on: a connection id freed by an unmount goes to the next FUSE mount with
// a new fusectl generation; an instance's directory, opened before its
// connection went, no longer reaches any file; and AbortInstance of the
// old instance leaves the new one serving.
func TestControlInstanceReused(t *testing.T) {
	testenv.RequireFUSE(t)
	ctl := ensureFusectl(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	old, err := mountFixtureAt(t.TempDir(), wedgefs.ModeHealthy)
	if err != nil {
		t.Fatal(err)
	}
	oldRef := ConnRef{ID: old.conn}
	if oldRef.Gen, err = ctl.Generation(old.conn); err != nil || oldRef.Gen == 0 {
		t.Fatalf("Generation(%d) = %d, %v", old.conn, oldRef.Gen, err)
	}
	if n, err := ctl.WaitingInstance(oldRef); err != nil || n != 0 {
		t.Fatalf("WaitingInstance(%v) = %d, %v; want 0", oldRef, n, err)
	}
	held, err := ctl.openInstance(oldRef)
	if err != nil {
		t.Fatal(err)
	}
	defer held.close()
	if err := old.srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	// The directory held open across the removal reaches nothing.
	if err := held.writeAbort(); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("abort through a removed instance's directory: %v, want ENOENT", err)
	}
	if _, err := held.waiting(); !errors.Is(err, ErrNoSuchConnection) {
		t.Fatalf("waiting through a removed instance's directory: %v, want ErrNoSuchConnection", err)
	}

	// Mount until the kernel hands out the freed id (lower free ids are
	// filled first); another mount on the machine may take it: then fail.
	var cur *fixture
	for i := 0; cur == nil; i++ {
		fx := mountFixture(t, wedgefs.ModeHealthy)
		switch {
		case fx.conn == old.conn:
			cur = fx
		case fx.conn > old.conn || i == 64:
			t.Fatalf("could not provoke id reuse: got id %d after %d mounts, want the freed %d", fx.conn, i+1, old.conn)
		}
	}
	curGen, err := ctl.Generation(cur.conn)
	if err != nil || curGen == oldRef.Gen {
		t.Fatalf("reused id %d: generation %d (%v), the old instance's was %d", cur.conn, curGen, err, oldRef.Gen)
	}
	if err := ctl.AbortInstance(ctx, oldRef); !errors.Is(err, ErrConnectionReplaced) {
		t.Fatalf("AbortInstance(%v) of a replaced instance = %v, want ErrConnectionReplaced", oldRef, err)
	}
	if _, err := ctl.WaitingInstance(oldRef); !errors.Is(err, ErrConnectionReplaced) {
		t.Fatalf("WaitingInstance(%v) of a replaced instance = %v, want ErrConnectionReplaced", oldRef, err)
	}
	if err := ctl.AbortInstance(ctx, ConnRef{ID: cur.conn}); !errors.Is(err, ErrConnectionReplaced) {
		t.Fatalf("AbortInstance without a generation = %v, want ErrConnectionReplaced", err)
	}
	reader := startChild(t, "read", filepath.Join(cur.dir, wedgefs.DataFile), nil, cur.unblock)
	if exited, err := reader.wait(5 * time.Second); !exited || err != nil {
		t.Fatalf("the new instance no longer serves: exited %v, %v; stderr %q", exited, err, reader.stderr)
	}

	// The current instance, named exactly, is aborted.
	if err := ctl.AbortInstance(ctx, ConnRef{ID: cur.conn, Gen: curGen}); err != nil {
		t.Fatalf("AbortInstance of the current instance: %v", err)
	}
	reader = startChild(t, "read", filepath.Join(cur.dir, wedgefs.DataFile), nil, cur.unblock)
	if exited, _ := reader.wait(5 * time.Second); !exited || !abortedErr(reader.stderr.String()) {
		t.Fatalf("reader of the aborted instance: exited %v, stderr %q; want ENOTCONN or ECONNABORTED", exited, reader.stderr)
	}
}
