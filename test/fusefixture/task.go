package fusefixture

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The tasks below use raw syscalls: an os.File may park a FUSE file in the
// netpoller instead of blocking in the kernel, which is where the wedge
// has to happen.

// hold opens FILE and never closes it, so that its FLUSH is sent only when
// the task dies.
func hold(args []string) error {
	fl := flag.NewFlagSet("hold", flag.ExitOnError)
	readyFile := fl.String("ready", "", "also append \"ready\" to this file once the file is open")
	fl.Parse(args)
	if fl.NArg() != 1 {
		return errors.New("usage: hold [-ready FILE] FILE")
	}
	path := fl.Arg(0)
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	emit("held", "path", path, "fd", fd)
	if err := ready(*readyFile, "hold"); err != nil {
		return err
	}
	waitSignal()
	return nil
}

// read reads FILE once and prints what it got.
func read(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: read FILE")
	}
	fd, err := syscall.Open(args[0], syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", args[0], err)
	}
	buf := make([]byte, 4096)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		return fmt.Errorf("read %s: %w", args[0], err)
	}
	emit("read", "n", n, "data", fmt.Sprintf("%x", buf[:n]))
	return syscall.Close(fd)
}

// stat stats PATH once.
func stat(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: stat PATH")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(args[0], &st); err != nil {
		return fmt.Errorf("stat %s: %w", args[0], err)
	}
	emit("stat", "ino", st.Ino, "size", st.Size)
	return nil
}

// execHold opens FILE close-on-exec and then execs: the exec flushes the
// file while it holds the task's exec lock (exec_update_lock, taken for
// writing in begin_new_exec before do_close_on_exec), so when the FLUSH is
// never answered the task sleeps in fuse_flush inside execve and every
// reader of its /proc/TID/stack or syscall sleeps behind it. The program
// it would exec (itself, "stat /") runs only once the flush is answered.
// With -go GATE it waits, armed ("ready role=exec-hold"), until GATE
// exists before it execs: what must be read of the task before it sleeps
// (a record of a container whose init it is) is read then.
func execHold(args []string) error {
	fl := flag.NewFlagSet("exec-hold", flag.ExitOnError)
	gate := fl.String("go", "", "wait until this file exists before the exec")
	fl.Parse(args)
	if fl.NArg() != 1 {
		return errors.New("usage: exec-hold [-go GATE] FILE")
	}
	path := fl.Arg(0)
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	emit("held", "path", path, "fd", fd)
	if *gate != "" {
		if err := ready("", "exec-hold"); err != nil {
			return err
		}
		for {
			if _, err := os.Stat(*gate); err == nil {
				break
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("gate: %w", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	emit("exec", "pid", syscall.Getpid())
	err = syscall.Exec("/proc/self/exe", []string{"fusefixture", "stat", "/"}, nil)
	return fmt.Errorf("exec: %w", err)
}

// mmapRead maps OWN_FILE private and writable, not yet faulted in, and
// read(2)s SHARED_FILE into that mapping: the read's copy into the buffer
// (or, under direct I/O, its pinning of the buffer's pages) faults, the
// fault reads the page from OWN_FILE, and when OWN_FILE's READ is never
// answered the task sleeps on OWN_FILE's connection while its
// /proc/TID/syscall names read() on SHARED_FILE's fd: fd evidence that
// points at the wrong connection.
//
// MADV_RANDOM turns off readahead on the mapping: filemap_fault then reads
// the page itself (read_folio, a synchronous FUSE READ), so the task waits
// in request_wait_answer; with readahead the READ is sent asynchronously
// and the task waits for the page lock instead, outside FUSE.
func mmapRead(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: mmap-read SHARED_FILE OWN_FILE")
	}
	shared, own := args[0], args[1]
	sfd, err := syscall.Open(shared, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", shared, err)
	}
	ofd, err := syscall.Open(own, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", own, err)
	}
	buf, err := unix.Mmap(ofd, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		return fmt.Errorf("mmap %s: %w", own, err)
	}
	if err := unix.Madvise(buf, unix.MADV_RANDOM); err != nil {
		return fmt.Errorf("madvise %s: %w", own, err)
	}
	emit("mapped", "path", own, "fd", ofd)
	emit("reading", "path", shared, "fd", sfd)
	n, err := syscall.Read(sfd, buf)
	if err != nil {
		return fmt.Errorf("read %s into the mapping of %s: %w", shared, own, err)
	}
	emit("read", "n", n, "data", fmt.Sprintf("%x", buf[:n]))
	return nil
}
