package proc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startChild starts cmd and kills and reaps it when the test ends.
func startChild(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

// mountID is the id of the mount holding path, from statx (not /proc).
func mountID(t *testing.T, path string) int {
	t.Helper()
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_MNT_ID, &stx); err != nil {
		t.Fatal(err)
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		t.Fatalf("statx %s: no mount id", path)
	}
	return int(stx.Mnt_id)
}

func TestLiveSelf(t *testing.T) {
	p, pid := NewFS(""), os.Getpid()
	st, err := p.Stat(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	comm := filepath.Base(os.Args[0])
	comm = comm[:min(len(comm), 15)] // TASK_COMM_LEN - 1
	if st.PID != pid || st.PPID != os.Getppid() || st.StartTime == 0 || st.Comm != comm || st.Exiting() {
		t.Errorf("Stat(self) = %+v; want pid %d, ppid %d, comm %q, not exiting", st, pid, os.Getppid(), comm)
	}
	// A bounded read runs on another thread: this one, locked, is on a
	// CPU or asleep waiting for the answer.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	if ts, err := p.Stat(context.Background(), tid); err != nil || ts.PID != tid || (ts.State != "R" && ts.State != "S") || ts.StartTime < st.StartTime {
		t.Errorf("Stat(own tid %d) = %+v, %v; want running or sleeping", tid, ts, err)
	}
	status, err := p.Status(pid)
	if err != nil {
		t.Fatal(err)
	}
	if status.Tgid != pid || status.Name != st.Comm || status.Threads < 1 || len(status.NSpid) == 0 || status.NSpid[0] != pid {
		t.Errorf("Status(self) = %+v", status)
	}

	// The calling thread is a task of the group.
	tids, err := p.Tasks(pid)
	if err != nil || !slices.Contains(tids, pid) || !slices.Contains(tids, tid) {
		t.Errorf("Tasks(self) = %v, %v; want %d and %d", tids, err, pid, tid)
	}
	pids, err := p.PIDs()
	if err != nil || !slices.Contains(pids, pid) || !slices.Contains(pids, 1) || !slices.IsSorted(pids) {
		t.Errorf("PIDs() = %d pids, %v", len(pids), err)
	}
}

func TestLiveNamespaceInode(t *testing.T) {
	p, pid := NewFS(""), os.Getpid()
	for _, kind := range []string{"pid", "mnt", "net"} {
		ino, err := p.NamespaceInode(context.Background(), pid, kind)
		if err != nil {
			t.Fatal(err)
		}
		// The link's own inode number is the namespace inode.
		link := filepath.Join("/proc", strconv.Itoa(pid), "ns", kind)
		fi, err := os.Stat(link)
		if err != nil {
			t.Fatal(err)
		}
		target, err := os.Readlink(link)
		if err != nil {
			t.Fatal(err)
		}
		if want := fi.Sys().(*syscall.Stat_t).Ino; ino != want || target != kind+":["+strconv.FormatUint(want, 10)+"]" {
			t.Errorf("NamespaceInode(self, %s) = %d; stat says %d, readlink %q", kind, ino, want, target)
		}
	}
	if _, err := p.NamespaceInode(context.Background(), pid, "nosuchkind"); !errors.Is(err, ErrUnreadable) {
		t.Errorf("NamespaceInode(self, nosuchkind): %v, want ErrUnreadable", err)
	}
}

func TestLiveMountInfo(t *testing.T) {
	p := NewFS("")
	mounts, err := p.MountInfo(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	rootID := mountID(t, "/")
	var found bool
	for _, m := range mounts {
		if m.ID == rootID {
			found = m.Mountpoint == "/"
		}
	}
	if !found {
		t.Errorf("MountInfo(self): %d mounts, none is mount %d at / (statx)", len(mounts), rootID)
	}
}

func TestLiveFDInfo(t *testing.T) {
	p, pid := NewFS(""), os.Getpid()
	name := filepath.Join(t.TempDir(), "f")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString("hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(2, 0); err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	fi, err := p.FDInfo(pid, fd)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Pos != 2 || fi.Flags&unix.O_ACCMODE != unix.O_RDWR || fi.Flags&unix.O_CLOEXEC == 0 || fi.MntID != mountID(t, name) || fi.HasFUSEConnection {
		t.Errorf("FDInfo(self, %d) = %+v; want pos 2, O_RDWR|O_CLOEXEC, mnt_id %d", fd, fi, mountID(t, name))
	}
	f.Close()
	if _, err := p.FDInfo(pid, fd); !errors.Is(err, ErrUnreadable) || !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNoProcess) {
		t.Errorf("FDInfo of closed fd %d: %v, want ErrUnreadable", fd, err)
	}
}

// kernelBefore reports whether the running kernel's release is older than
// major.minor.
func kernelBefore(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	var maj, min int
	if _, err := fmt.Sscanf(release, "%d.%d", &maj, &min); err != nil {
		t.Fatalf("kernel release %q: %v", release, err)
	}
	return maj < major || maj == major && min < minor
}

// TestLiveBlockedReader reads the views fuseguard uses to find a stuck
// task's fd, on a child blocked in read(2) on a pipe.
func TestLiveBlockedReader(t *testing.T) {
	testenv.RequireRoot(t)
	cat := testenv.RequireBinary(t, "cat")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	cmd := exec.Command(cat)
	cmd.Stdin = r
	pid := startChild(t, cmd)

	p := NewFS("")
	var sc Syscall
	waitFor(t, "cat to block in read(2)", func() bool {
		sc, err = p.Syscall(context.Background(), pid)
		return err == nil && sc.Number == unix.SYS_READ
	})
	if fd, ok := sc.FD(); !ok || fd != 0 {
		t.Errorf("Syscall(cat) = %+v: FD() = %d, %v; want 0", sc, fd, ok)
	}
	stack, err := p.Stack(context.Background(), pid)
	// The pipe's read function is pipe_read, anon_pipe_read since 6.16.
	if err != nil || !stack.Has("vfs_read") || !stack.Has("ksys_read") {
		t.Errorf("Stack(cat) = %s, %v; want … vfs_read <- ksys_read", stack, err)
	}
	// wchan skips the scheduler frames, as /proc/PID/stack does. Before
	// 5.16 x86-64 found it by frame pointers, which kernels built with the
	// ORC unwinder (Debian's 5.10) lack: they print 0 for every task.
	wchan, err := p.Wchan(context.Background(), pid)
	switch {
	case err == nil && wchan == "" && runtime.GOARCH == "amd64" && kernelBefore(t, 5, 16):
		t.Logf("Wchan(cat) = \"\": this kernel's wchan is 0 for every task")
	case err != nil || wchan != stack.Top().Function:
		t.Errorf("Wchan(cat) = %q, %v; stack top %q", wchan, err, stack.Top().Function)
	}
	st, err := p.Stat(context.Background(), pid)
	if err != nil || st.State != "S" || st.PPID != os.Getpid() {
		t.Errorf("Stat(cat) = %+v, %v; want S, child of %d", st, err, os.Getpid())
	}
	if fi, err := p.FDInfo(pid, 0); err != nil || fi.Flags&unix.O_ACCMODE != unix.O_RDONLY {
		t.Errorf("FDInfo(cat, 0) = %+v, %v; want the pipe's read end", fi, err)
	}
	if tids, err := p.Tasks(pid); err != nil || !slices.Equal(tids, []int{pid}) {
		t.Errorf("Tasks(cat) = %v, %v", tids, err)
	}
	mine, err1 := p.Cgroup(os.Getpid())
	its, err2 := p.Cgroup(pid)
	if err1 != nil || err2 != nil || mine != its || mine == "" || mine[0] != '/' {
		t.Errorf("Cgroup(self) = %q, %v; Cgroup(child) = %q, %v; want the same path", mine, err1, its, err2)
	}
	if pids, err := p.PIDs(); err != nil || !slices.Contains(pids, pid) {
		t.Errorf("PIDs() lacks %d: %v", pid, err)
	}
}

func TestLiveSleepingChildStack(t *testing.T) {
	testenv.RequireRoot(t)
	sleep := testenv.RequireBinary(t, "sleep")
	pid := startChild(t, exec.Command(sleep, "1000"))
	p := NewFS("")
	var stack Stack
	var err error
	waitFor(t, "sleep to sleep", func() bool {
		stack, err = p.Stack(context.Background(), pid)
		return err == nil && stack.Has("hrtimer_nanosleep")
	})
	if top := stack.Top(); top.Function == "" || top.Size == 0 {
		t.Errorf("Stack(sleep) = %s: top %+v", stack, top)
	}
}

// TestLiveZombieAndReaped follows a child through exit: a zombie keeps its
// pid directory but no mount table or stack, a reaped pid is gone.
func TestLiveZombieAndReaped(t *testing.T) {
	testenv.RequireRoot(t)
	tr := testenv.RequireBinary(t, "true")
	cmd := exec.Command(tr)
	pid := startChild(t, cmd)
	p := NewFS("")
	var st Stat
	var err error
	waitFor(t, "true to exit", func() bool {
		st, err = p.Stat(context.Background(), pid)
		return err == nil && st.State == "Z"
	})
	if !st.Exiting() {
		t.Errorf("zombie Stat = %+v: no PF_EXITING", st)
	}
	if _, err := p.MountInfo(pid); !errors.Is(err, ErrUnreadable) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("MountInfo(zombie): %v, want ErrUnreadable (EINVAL)", err)
	}
	if _, err := p.Stack(context.Background(), pid); !errors.Is(err, ErrUnreadable) {
		t.Errorf("Stack(zombie): %v, want ErrUnreadable (empty)", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	assertNoProcess(t, p, pid)
}
