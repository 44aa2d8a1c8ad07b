package fusefixture

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/test/wedgefs"
)

// armTimeout bounds how long serve waits for its own request to arrive.
const armTimeout = 10 * time.Second

// serve mounts wedgefs and serves it until SIGTERM or SIGINT.
func serve(args []string) error {
	fl := flag.NewFlagSet("serve", flag.ExitOnError)
	modeName := fl.String("mode", "healthy", "healthy, read, lookup or flush")
	dir := fl.String("mount", "", "mountpoint (must exist)")
	name := fl.String("name", "wedgefs", "subtype: the fs type is fuse.NAME")
	selfRead := fl.Bool("self-read", false, "a thread of the daemon reads DIR/data (mode read) or stats DIR/hang (mode lookup) itself: the seed's self-deadlock")
	holdOwn := fl.Bool("hold", false, "the daemon opens DIR/data itself and never closes it (on fd 0, below /dev/fuse, so that its FLUSH at exit comes first)")
	spawnNS := fl.Bool("spawn-ns", false, "start the command after -- in new PID and mount namespaces (as a container init)")
	readyFile := fl.String("ready", "", "also append \"ready\" to this file once armed")
	debug := fl.Bool("debug", false, "log FUSE requests on stderr")
	cached := fl.Bool("cached", false, "open DIR/data without direct I/O: reads go through the page cache (with -mode healthy)")
	fl.Parse(args)
	mode, err := wedgefs.ParseMode(*modeName)
	if err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-mount is required")
	}
	if *selfRead && mode != wedgefs.ModeRead && mode != wedgefs.ModeLookup {
		return errors.New("-self-read needs -mode read or lookup")
	}

	blocked := make(chan string, 1)
	srv, err := wedgefs.Mount(*dir, wedgefs.Options{
		Mode:   mode,
		Name:   *name,
		Debug:  *debug,
		Cached: *cached,
		OnBlocked: func(op string) {
			emit("blocked", "op", op)
			select {
			case blocked <- op:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	conn, err := srv.Conn()
	if err != nil {
		return err
	}
	emit("mounted", "conn", conn, "dir", srv.Dir(), "mode", mode)

	if *holdOwn {
		if err := holdOnFD0(filepath.Join(srv.Dir(), wedgefs.DataFile)); err != nil {
			return err
		}
	}
	if fl.NArg() > 0 {
		if err := spawn(fl.Args(), *spawnNS); err != nil {
			return err
		}
	}
	if *selfRead {
		go selfDeadlock(srv.Dir(), mode)
		select {
		case <-blocked:
		case <-time.After(armTimeout):
			return fmt.Errorf("own %s request not received within %s", mode.Op(), armTimeout)
		}
	}
	if err := ready(*readyFile, "serve"); err != nil {
		return err
	}

	sig := waitSignal()
	emit("signal", "sig", fmt.Sprintf("%d", sig.(syscall.Signal)))
	// Parked handlers are released so that the unmount is not busy.
	return srv.Unmount()
}

// holdOnFD0 opens path and moves it to fd 0. At exit the kernel closes
// descriptors in ascending order; the held file must be closed (and its
// FLUSH sent) while the /dev/fuse descriptor is still open, or closing
// /dev/fuse would abort the connection first and nothing would wedge. The
// original descriptor is deliberately left open: closing it would send a
// FLUSH now. Both are close-on-exec, so a command started after -- flushes
// them in its execve, and in mode flush stays there (the W6 wedge): start
// the container's other tasks elsewhere.
func holdOnFD0(path string) error {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("hold %s: %w", path, err)
	}
	if err := unix.Dup3(fd, 0, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("hold %s: dup3 to fd 0: %w", path, err)
	}
	emit("held", "path", path, "fd", 0)
	return nil
}

// selfDeadlock has a thread of the daemon itself wait on its own mount, as
// the seed's ndrive did. Raw syscalls: the thread must block in the kernel.
func selfDeadlock(dir string, mode wedgefs.Mode) {
	runtime.LockOSThread()
	var err error
	switch mode {
	case wedgefs.ModeRead:
		var fd int
		fd, err = syscall.Open(filepath.Join(dir, wedgefs.DataFile), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == nil {
			_, err = syscall.Read(fd, make([]byte, 4096))
		}
	case wedgefs.ModeLookup:
		var st syscall.Stat_t
		err = syscall.Stat(filepath.Join(dir, wedgefs.HangName), &st)
	}
	emit("self-read-returned", "err", fmt.Sprintf("%q", fmt.Sprint(err)))
}

// spawn starts argv sharing our stdout and stderr and reaps it in the
// background.
func spawn(argv []string, newNS bool) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if newNS {
		// Unsharing the mount namespace makes Go remount / rprivate in the
		// child before exec.
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("spawn %s: %w", argv[0], err)
	}
	pid := cmd.Process.Pid
	emit("spawned", "by", "serve", "pid", pid)
	go func() {
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = exitCode(unix.WaitStatus(ee.Sys().(syscall.WaitStatus)))
		}
		emit("reaped", "by", "serve", "pid", pid, "status", code)
	}()
	return nil
}
