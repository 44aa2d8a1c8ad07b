package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/untrusted"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
)

// procReadTimeout bounds the probe of /proc/TID/stack and syscall; the
// probed thread is our own, blocked in read(2), so the reads take
// microseconds.
const procReadTimeout = 2 * time.Second

// CheckRoot: fuseguard aborts connections in fusectl, mounts fusectl and
// reads other tasks' kernel stacks, all of which need root.
func CheckRoot() Check {
	c := Check{Name: "root"}
	if uid := os.Geteuid(); uid != 0 {
		c.Status, c.Detail = Fail, fmt.Sprintf("running as uid %d", uid)
		c.Fix = "run fuseguard as root: it aborts FUSE connections in fusectl and reads kernel stacks"
		return c
	}
	c.Status, c.Detail = OK, "running as uid 0"
	return c
}

// CheckDevFuse opens the FUSE device for reading and writing, as a FUSE
// daemon would.
func CheckDevFuse(path string) Check {
	c := Check{Name: "/dev/fuse"}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		c.Status, c.Detail = Fail, untrusted.Line(err.Error())
		c.Fix = "load the fuse module (modprobe fuse) or give this container the device"
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			c.Fix = "run as root, with access to the fuse device (cgroup device rule c 10:229)"
		}
		return c
	}
	f.Close()
	c.Status, c.Detail = OK, untrusted.Text(path)+" opens read-write"
	return c
}

// CheckFusectl: fuseguard aborts a connection by writing to
// fusectl's abort file. An unmounted fusectl is fine when the kernel has
// it: fuseguard mounts it itself (fuseconn.Control.Ensure).
func CheckFusectl(dir string) Check {
	ctl := fuseconn.NewControl(dir)
	c := Check{Name: "fusectl"}
	mounted, err := ctl.Mounted()
	switch {
	case err != nil:
		c.Status, c.Detail = Fail, untrusted.Line(err.Error())
		c.Fix = "mount -t fusectl fusectl " + untrusted.Text(ctl.Dir)
	case mounted:
		c.Status, c.Detail = OK, "mounted on "+untrusted.Text(ctl.Dir)
	case kernelHasFilesystem("fusectl"):
		c.Status = OK
		c.Detail = "not mounted on " + untrusted.Text(ctl.Dir) + "; the kernel has it and fuseguard mounts it when it needs it"
	default:
		c.Status, c.Detail = Fail, "not mounted on "+untrusted.Text(ctl.Dir)+" and not in /proc/filesystems"
		c.Fix = "load the fuse module (modprobe fuse), which provides fusectl"
	}
	return c
}

// kernelHasFilesystem reports whether /proc/filesystems lists name.
func kernelHasFilesystem(name string) bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

// CheckProcReadable reads /proc/TID/stack and /proc/TID/syscall of one of
// our own threads while it is blocked in read(2) on a pipe: what fuseguard
// reads of a stuck task to tell where it waits. The stack needs
// CONFIG_STACKTRACE and CAP_SYS_ADMIN, the syscall file
// CONFIG_HAVE_ARCH_TRACEHOOK.
func CheckProcReadable(ctx context.Context) Check {
	c := Check{Name: "/proc stack and syscall"}
	stack, sys, err := probeBlockedThread(ctx)
	if err != nil {
		c.Status, c.Detail = Fail, untrusted.Line(err.Error())
		c.Fix = "run as root on a kernel with CONFIG_STACKTRACE and CONFIG_HAVE_ARCH_TRACEHOOK; without them fuseguard cannot tell where a task waits"
		return c
	}
	c.Status = OK
	c.Detail = fmt.Sprintf("read a blocked thread's stack (%s) and syscall (nr %d)", untrusted.Text(stack.Top().Base()), sys.Number)
	return c
}

// probeBlockedThread blocks a thread of ours in read(2) on a pipe, reads
// its stack and syscall, and releases it.
func probeBlockedThread(ctx context.Context) (proc.Stack, proc.Syscall, error) {
	ctx, cancel := context.WithTimeout(ctx, procReadTimeout)
	defer cancel()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, proc.Syscall{}, fmt.Errorf("pipe: %w", err)
	}
	r, w := p[0], p[1]
	defer unix.Close(w)
	tids := make(chan int, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer unix.Close(r)
		// The thread must stay the one whose tid we read; it is given
		// back to the runtime, as it is left in no special state.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		var b [1]byte
		for {
			if _, err := unix.Read(r, b[:]); err != unix.EINTR {
				return
			}
		}
	}()
	defer func() {
		_, _ = unix.Write(w, []byte{0})
		<-done
	}()
	tid := <-tids
	fs := proc.NewFS("")
	// Wait until it sleeps in read: a thread on a CPU has an empty stack
	// and "running" for its syscall.
	for {
		st, err := fs.Stat(ctx, tid)
		if err != nil {
			return nil, proc.Syscall{}, err
		}
		if st.State == "S" {
			break
		}
		select {
		case <-ctx.Done():
			return nil, proc.Syscall{}, fmt.Errorf("thread %d did not block in read: %w", tid, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	stack, err := fs.Stack(ctx, tid)
	if err != nil {
		return nil, proc.Syscall{}, err
	}
	sys, err := fs.Syscall(ctx, tid)
	if err != nil {
		return nil, proc.Syscall{}, err
	}
	if sys.Number < 0 {
		return nil, proc.Syscall{}, fmt.Errorf("/proc/%d/syscall names no syscall for a thread blocked in read", tid)
	}
	return stack, sys, nil
}

// CheckPidfd opens a pidfd of this process: fuseguard signals and waits
// for a container's init through one, so a reused pid is never hit.
func CheckPidfd() Check {
	c := Check{Name: "pidfd"}
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		c.Status = Fail
		if errors.Is(err, unix.ENOSYS) {
			c.Detail = killer.ErrNoPidfd.Error()
		} else {
			c.Detail = "pidfd_open: " + err.Error()
		}
		c.Fix = "run Linux 5.3 or later, with pidfd_open allowed by the seccomp profile of this process"
		return c
	}
	unix.Close(fd)
	c.Status, c.Detail = OK, "pidfd_open works"
	return c
}

// Kernel FUSE request timeouts (Linux 6.15+), in seconds, 0 when off.
const (
	sysctlDefaultTimeout = "default_request_timeout"
	sysctlMaxTimeout     = "max_request_timeout"
)

// timeoutsInteraction is how a kernel request timeout and fuseguard
// differ, said in every report of the check.
const timeoutsInteraction = "a kernel timeout aborts any request unanswered after N s, on every connection and for every user of it; fuseguard aborts only the stuck container's own connections, at kill time"

// CheckKernelTimeouts reports the kernel's own FUSE request timeouts.
// Either way fuseguard works; they are reported so an operator knows
// which of the two will end a hung request first.
func CheckKernelTimeouts(dir string) Check {
	c := Check{Name: "kernel FUSE request timeouts", Status: OK}
	defTimeout, errDef := readSysctlInt(filepath.Join(dir, sysctlDefaultTimeout))
	maxTimeout, errMax := readSysctlInt(filepath.Join(dir, sysctlMaxTimeout))
	if errors.Is(errDef, os.ErrNotExist) && errors.Is(errMax, os.ErrNotExist) {
		c.Detail = "not available on this kernel (Linux 6.15+); fuseguard alone bounds a wedge"
		return c
	}
	if errDef != nil || errMax != nil {
		c.Status = Warn
		c.Detail = untrusted.Line(errors.Join(errDef, errMax).Error())
		c.Fix = "check " + untrusted.Text(dir) + " (sysctl fs.fuse)"
		return c
	}
	c.Detail = fmt.Sprintf("fs.fuse.%s=%s, fs.fuse.%s=%s: %s", sysctlDefaultTimeout, seconds(defTimeout), sysctlMaxTimeout, seconds(maxTimeout), timeoutsInteraction)
	return c
}

func seconds(n int) string {
	if n == 0 {
		return "0 (off)"
	}
	return strconv.Itoa(n) + "s"
}

func readSysctlInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}
