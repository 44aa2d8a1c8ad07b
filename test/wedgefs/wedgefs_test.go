package wedgefs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/testenv"
	"github.com/fuseguard/fuseguard/test/wedgefs"
)

const answerTimeout = 5 * time.Second

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want wedgefs.Mode
		ok   bool
	}{
		{"healthy", wedgefs.ModeHealthy, true},
		{"read", wedgefs.ModeRead, true},
		{"lookup", wedgefs.ModeLookup, true},
		{"flush", wedgefs.ModeFlush, true},
		{"", "", false},
		{"READ", "", false},
		{"write", "", false},
	} {
		got, err := wedgefs.ParseMode(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, wedgefs.ErrUnknownMode) {
			t.Errorf("ParseMode(%q) error %v does not wrap ErrUnknownMode", tc.in, err)
		}
	}
}

func FuzzParseMode(f *testing.F) {
	for _, m := range wedgefs.Modes {
		f.Add(string(m))
	}
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := wedgefs.ParseMode(s)
		if err != nil {
			return
		}
		if string(m) != s {
			t.Fatalf("ParseMode(%q) = %q", s, m)
		}
		if (m.Op() == "") != (m == wedgefs.ModeHealthy) {
			t.Fatalf("mode %q has op %q", m, m.Op())
		}
	})
}

// mount mounts wedgefs on a fresh directory; the cleanup unmounts it
// (releasing parked requests first).
func mount(t *testing.T, opts wedgefs.Options) *wedgefs.Server {
	t.Helper()
	testenv.RequireFUSE(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := wedgefs.Mount(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		srv.Wait()
	})
	return srv
}

// result is what a raw syscall in a throwaway goroutine returned.
type result struct {
	data string
	err  error
}

// onMount runs fn in a goroutine that may block in the kernel on the
// mount; the test abandons it if it does not return.
func onMount(fn func() (string, error)) <-chan result {
	ch := make(chan result, 1)
	go func() {
		data, err := fn()
		ch <- result{data, err}
	}()
	return ch
}

func readFile(path string) (string, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 4096)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func statPath(path string) (string, error) {
	var st syscall.Stat_t
	return "", syscall.Stat(path, &st)
}

func await(t *testing.T, ch <-chan result, what string) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(answerTimeout):
		t.Fatalf("%s: no answer within %s", what, answerTimeout)
		return result{}
	}
}

func TestHealthyAnswers(t *testing.T) {
	srv := mount(t, wedgefs.Options{Mode: wedgefs.ModeHealthy, Name: "ndrive"})
	data := filepath.Join(srv.Dir(), wedgefs.DataFile)
	for i := 0; i < 2; i++ {
		r := await(t, onMount(func() (string, error) { return readFile(data) }), "read")
		if r.err != nil || r.data != wedgefs.Content {
			t.Fatalf("read %d = %q, %v; want %q", i, r.data, r.err, wedgefs.Content)
		}
	}
	r := await(t, onMount(func() (string, error) { return statPath(filepath.Join(srv.Dir(), wedgefs.HangName)) }), "stat hang")
	if !errors.Is(r.err, syscall.ENOENT) {
		t.Fatalf("stat %s in healthy mode: %v, want ENOENT", wedgefs.HangName, r.err)
	}
	if srv.Parked() != 0 {
		t.Fatalf("healthy server parked %d requests", srv.Parked())
	}
}

func TestConnAndFSType(t *testing.T) {
	srv := mount(t, wedgefs.Options{Name: "lxcfs"})
	conn, err := srv.Conn()
	if err != nil {
		t.Fatal(err)
	}
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(srv.Dir()))
	if err != nil || len(infos) != 1 {
		t.Fatalf("mounts on %s: %v, %v", srv.Dir(), infos, err)
	}
	if got := infos[0]; got.FSType != "fuse.lxcfs" || uint32(got.Minor) != conn {
		t.Fatalf("mount %s %d:%d, want fuse.lxcfs with minor %d", got.FSType, got.Major, got.Minor, conn)
	}
}

// TestDevFuseCloseOnExec checks that children cannot inherit the device: a
// child holding it would keep the connection alive after the daemon died.
func TestDevFuseCloseOnExec(t *testing.T) {
	mount(t, wedgefs.Options{})
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range ents {
		if target, _ := os.Readlink("/proc/self/fd/" + e.Name()); target != "/dev/fuse" {
			continue
		}
		found++
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		info, err := proc.NewFS("").FDInfo(os.Getpid(), fd)
		if err != nil {
			t.Fatal(err)
		}
		if info.Flags&syscall.O_CLOEXEC == 0 {
			t.Errorf("/dev/fuse fd %d has flags %o: no O_CLOEXEC", fd, info.Flags)
		}
	}
	if found == 0 {
		t.Fatal("no /dev/fuse descriptor open while mounted")
	}
}

// TestParksUntilRelease checks each wedging mode: the request reaches the
// server, stays unanswered, and Release answers it with EIO.
func TestParksUntilRelease(t *testing.T) {
	for _, tc := range []struct {
		mode wedgefs.Mode
		// call blocks on the mount; it runs in a throwaway goroutine.
		call func(dir string) (string, error)
	}{
		{wedgefs.ModeRead, func(dir string) (string, error) { return readFile(filepath.Join(dir, wedgefs.DataFile)) }},
		{wedgefs.ModeLookup, func(dir string) (string, error) { return statPath(filepath.Join(dir, wedgefs.HangName)) }},
		{wedgefs.ModeFlush, func(dir string) (string, error) {
			fd, err := syscall.Open(filepath.Join(dir, wedgefs.DataFile), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				return "", err
			}
			return "", syscall.Close(fd) // sends the FLUSH
		}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			notified := make(chan string, 8)
			srv := mount(t, wedgefs.Options{Mode: tc.mode, OnBlocked: func(op string) { notified <- op }})
			ch := onMount(func() (string, error) { return tc.call(srv.Dir()) })
			select {
			case op := <-srv.Blocked():
				if op != tc.mode.Op() {
					t.Fatalf("parked %q, want %q", op, tc.mode.Op())
				}
			case r := <-ch:
				t.Fatalf("answered without parking: %q, %v", r.data, r.err)
			case <-time.After(answerTimeout):
				t.Fatalf("no %s parked within %s", tc.mode.Op(), answerTimeout)
			}
			select {
			case r := <-ch:
				t.Fatalf("answered while parked: %q, %v", r.data, r.err)
			case <-time.After(100 * time.Millisecond):
			}
			if len(notified) != 1 || <-notified != tc.mode.Op() || srv.Parked() != 1 {
				t.Fatalf("OnBlocked called %d times, Parked = %d; want one %s", len(notified)+1, srv.Parked(), tc.mode.Op())
			}
			srv.Release()
			if r := await(t, ch, "after Release"); !errors.Is(r.err, syscall.EIO) {
				t.Fatalf("after Release: %q, %v; want EIO", r.data, r.err)
			}
		})
	}
}
