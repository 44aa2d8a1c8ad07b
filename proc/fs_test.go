package proc

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Pids of the fake tree: init is the pid of the stat capture, the others
// are the reader and the exit-flusher of the same wedged container.
const (
	fakeReader  = 24310
	fakeFlusher = 24311
	fakeMissing = 4242
)

// fakeProc builds a proc tree from the captures (test vectors, not a mock
// of the kernel) and returns its root and init's pid.
func fakeProc(t *testing.T) (string, int) {
	t.Helper()
	root := t.TempDir()
	st, err := ParseStat(readCapture(t, "linux-6.18-init-zap.stat"))
	if err != nil {
		t.Fatal(err)
	}
	initPID := st.PID
	write := func(pid int, name string, data []byte) {
		t.Helper()
		p := filepath.Join(root, strconv.Itoa(pid), name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(p string) {
		t.Helper()
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// init, in zap_pid_ns_processes: its mount table is already gone.
	for _, ext := range []string{"stat", "status", "wchan"} {
		write(initPID, ext, readCapture(t, "linux-6.18-init-zap."+ext))
	}
	write(initPID, "stack", readCapture(t, "linux-6.18-init-zap_pid_ns_processes.stack"))
	write(initPID, "mountinfo", nil)
	write(initPID, "cgroup", []byte("1:cpu:/docker/w2\n0::/docker/w2\n"))
	mkdir(filepath.Join(root, strconv.Itoa(initPID), "task", strconv.Itoa(initPID)))
	link("pid:[4026532301]", filepath.Join(root, strconv.Itoa(initPID), "ns", "pid"))

	// The reader killed in read(2): the captured syscall line, renumbered
	// to this architecture's read.
	sc := strings.Fields(string(readCapture(t, "linux-6.18-fuse-read-killed.syscall")))
	sc[0] = strconv.Itoa(unix.SYS_READ)
	write(fakeReader, "syscall", []byte(strings.Join(sc, " ")+"\n"))
	write(fakeReader, "stack", readCapture(t, "linux-6.18-fuse-read-killed.stack"))
	write(fakeReader, "mountinfo", readCapture(t, "linux-6.18-container.mountinfo"))
	for _, blk := range splitFDInfo(t, readCapture(t, "linux-6.18-fuse-read-killed.fdinfo")) {
		write(fakeReader, filepath.Join("fdinfo", strconv.Itoa(blk.fd)), blk.data)
	}
	mkdir(filepath.Join(root, strconv.Itoa(fakeReader), "task", strconv.Itoa(fakeReader)))
	mkdir(filepath.Join(root, strconv.Itoa(fakeReader), "task", strconv.Itoa(fakeFlusher)))

	// The exit flusher, a thread of the reader's group; its wchan is empty.
	write(fakeFlusher, "stack", readCapture(t, "linux-6.18-fuse_flush-at-exit.stack"))
	write(fakeFlusher, "status", readCapture(t, "linux-6.18-fuse_flush-at-exit.status"))
	write(fakeFlusher, "wchan", []byte("0"))
	write(fakeFlusher, "syscall", nil)

	// Entries of a real /proc that are not processes.
	link(strconv.Itoa(initPID), filepath.Join(root, "self"))
	mkdir(filepath.Join(root, "sys", "fs"))
	mkdir(filepath.Join(root, "+7"))
	write(0, "stat", []byte("x"))
	return root, initPID
}

func TestFSCaptures(t *testing.T) {
	root, initPID := fakeProc(t)
	p := NewFS(root)
	if p.Root() != root {
		t.Fatalf("Root() = %q", p.Root())
	}

	st, err := p.Stat(context.Background(), initPID)
	if err != nil || st.PID != initPID || !st.Exiting() {
		t.Errorf("Stat(init) = %+v, %v; want pid %d, exiting", st, err, initPID)
	}
	status, err := p.Status(initPID)
	if err != nil || status.Tgid != initPID {
		t.Errorf("Status(init) = %+v, %v", status, err)
	}
	stack, err := p.Stack(context.Background(), initPID)
	if err != nil || !stack.Has("zap_pid_ns_processes") {
		t.Errorf("Stack(init) = %s, %v", stack, err)
	}
	// wchan names the function the task sleeps in: the top of its stack.
	if w, err := p.Wchan(context.Background(), initPID); err != nil || w != stack.Top().Function {
		t.Errorf("Wchan(init) = %q, %v; want %q", w, err, stack.Top().Function)
	}
	if w, err := p.Wchan(context.Background(), fakeFlusher); err != nil || w != "" {
		t.Errorf("Wchan(flusher) = %q, %v; want none", w, err)
	}
	if tids, err := p.Tasks(fakeReader); err != nil || !reflect.DeepEqual(tids, []int{fakeReader, fakeFlusher}) {
		t.Errorf("Tasks(reader) = %v, %v", tids, err)
	}
	if pids, err := p.PIDs(); err != nil || !reflect.DeepEqual(pids, []int{initPID, fakeReader, fakeFlusher}) {
		t.Errorf("PIDs() = %v, %v; want only the numeric process dirs, sorted", pids, err)
	}
	if ino, err := p.NamespaceInode(context.Background(), initPID, "pid"); err != nil || ino != 4026532301 {
		t.Errorf("NamespaceInode(init, pid) = %d, %v", ino, err)
	}
	if cg, err := p.Cgroup(initPID); err != nil || cg != "/docker/w2" {
		t.Errorf("Cgroup(init) = %q, %v", cg, err)
	}

	// The diagnosis path: the reader's syscall names its fd, the fd's mnt_id
	// names the mount, whose minor is the connection the daemon's
	// /dev/fuse fd serves.
	sc, err := p.Syscall(context.Background(), fakeReader)
	if err != nil {
		t.Fatal(err)
	}
	fd, ok := sc.FD()
	if !ok {
		t.Fatalf("Syscall(reader) = %+v: no fd", sc)
	}
	fi, err := p.FDInfo(fakeReader, fd)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := p.MountInfo(fakeReader)
	if err != nil {
		t.Fatal(err)
	}
	var conn int = -1
	for _, m := range mounts {
		if m.ID == fi.MntID {
			conn = m.Minor
		}
	}
	daemon, err := p.FDInfo(fakeReader, 5)
	if err != nil || !daemon.HasFUSEConnection || int(daemon.FUSEConnection) != conn {
		t.Errorf("fd %d on mount %d → connection %d; /dev/fuse fd says %+v, %v", fd, fi.MntID, conn, daemon, err)
	}

	// Entries that exist but say nothing: init's mount table, the
	// flusher's syscall, a closed fd, a missing namespace link.
	for name, err := range map[string]error{
		"MountInfo(init) empty":  second(p.MountInfo(initPID)),
		"Syscall(flusher) empty": second(p.Syscall(context.Background(), fakeFlusher)),
		"FDInfo(reader, 99)":     second(p.FDInfo(fakeReader, 99)),
		"NamespaceInode(mnt)":    second(p.NamespaceInode(context.Background(), initPID, "mnt")),
		"Stat(flusher)":          second(p.Stat(context.Background(), fakeFlusher)),
	} {
		if !errors.Is(err, ErrUnreadable) || errors.Is(err, ErrNoProcess) {
			t.Errorf("%s: %v, want ErrUnreadable", name, err)
		} else if !strings.Contains(err.Error(), root) {
			t.Errorf("%s: %v does not name the path", name, err)
		}
	}
	if err := second(p.FDInfo(fakeReader, 99)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("FDInfo of a closed fd: %v, want fs.ErrNotExist in the chain", err)
	}
	// A file that does not parse names the file.
	if err := second(p.Stat(context.Background(), 0)); err == nil || errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), filepath.Join(root, "0", "stat")) {
		t.Errorf("Stat of garbage: %v, want a parse error naming the file", err)
	}
	assertNoProcess(t, p, fakeMissing)
}

// assertNoProcess checks that every reader reports ErrNoProcess for pid.
func assertNoProcess(t *testing.T, p FS, pid int) {
	t.Helper()
	for name, err := range map[string]error{
		"Stat":           second(p.Stat(context.Background(), pid)),
		"Status":         second(p.Status(pid)),
		"Stack":          second(p.Stack(context.Background(), pid)),
		"Wchan":          second(p.Wchan(context.Background(), pid)),
		"Syscall":        second(p.Syscall(context.Background(), pid)),
		"FDInfo":         second(p.FDInfo(pid, 0)),
		"Tasks":          second(p.Tasks(pid)),
		"NamespaceInode": second(p.NamespaceInode(context.Background(), pid, "pid")),
		"Cgroup":         second(p.Cgroup(pid)),
		"MountInfo":      second(p.MountInfo(pid)),
	} {
		if !errors.Is(err, ErrNoProcess) || errors.Is(err, ErrUnreadable) {
			t.Errorf("%s(%d): %v, want ErrNoProcess", name, pid, err)
		} else if !strings.Contains(err.Error(), filepath.Join(p.Root(), strconv.Itoa(pid))) {
			t.Errorf("%s(%d): %v does not name the path", name, pid, err)
		}
	}
}

// second returns the error of a two-value call.
func second[T any](_ T, err error) error { return err }

func TestNewFSDefault(t *testing.T) {
	if r := NewFS("").Root(); r != "/proc" {
		t.Errorf("NewFS(\"\").Root() = %q", r)
	}
}
