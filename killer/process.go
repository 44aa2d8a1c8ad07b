package killer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/proc"
)

// Process is a target held through a pidfd: once open, signals and waits
// reach exactly the process whose identity was checked (its start time,
// or, see Open, its PID namespace and cgroup), never a process that reused
// its pid.
type Process struct {
	fd   int
	pid  int
	stat proc.Stat // zero unless read at open
}

// Open opens a pidfd and then checks the start time, so a pid reused
// between the caller's observation and the open is refused. The error wraps
// ErrNoTarget when there is no such process and ErrStaleTarget when the pid
// was reused. ctx bounds the read of the start time, which sleeps while the
// target is inside execve behind an unanswered FUSE flush (see package
// proc): give it a short deadline of its own (Options.ReadTimeout) rather
// than a caller's whole budget.
//
// When the start time cannot be read in time (proc.ErrReadTimeout, or
// proc.ErrTooManyBlockedReads once fuseguard has many such reads pending),
// a target that names its container's cgroup (Target.Cgroup, from the
// record) is proven by files that take no such lock (see proveInit);
// without one the read's error is returned, and when they disagree the
// target is refused (ErrUnprovenTarget).
func Open(ctx context.Context, p proc.FS, t Target) (*Process, error) {
	if t.PID <= 0 {
		return nil, fmt.Errorf("pid %d: %w", t.PID, ErrNoTarget)
	}
	fd, err := unix.PidfdOpen(t.PID, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ESRCH):
			return nil, fmt.Errorf("pidfd_open %d: %w", t.PID, ErrNoTarget)
		case errors.Is(err, unix.ENOSYS):
			return nil, fmt.Errorf("pidfd_open %d: %w: %w", t.PID, ErrNoPidfd, err)
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", t.PID, err)
	}
	if t.StartTime == 0 {
		// Nothing to check; stat is read later, and only if needed.
		return &Process{fd: fd, pid: t.PID}, nil
	}
	st, err := p.Stat(ctx, t.PID)
	if proc.Unanswered(err) && t.Cgroup != "" {
		pr := &Process{fd: fd, pid: t.PID}
		if perr := pr.proveInit(p, t.Cgroup); perr != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("pid %d: start time unreadable (%w), and %w", t.PID, err, perr)
		}
		return pr, nil
	}
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, proc.ErrNoProcess) {
			return nil, fmt.Errorf("pid %d: %w", t.PID, ErrNoTarget)
		}
		return nil, fmt.Errorf("pid %d: %w", t.PID, err)
	}
	if st.StartTime != t.StartTime {
		unix.Close(fd)
		return nil, fmt.Errorf("pid %d started at tick %d, expected %d: %w", t.PID, st.StartTime, t.StartTime, ErrStaleTarget)
	}
	return &Process{fd: fd, pid: t.PID, stat: st}, nil
}

// proveInit proves, without the start time, that pr is the init of the
// container whose cgroup is cgroup: its status says it is PID 1 of a PID
// namespace below the host's, and its cgroup is the container's. Neither
// file waits on the exec lock (status and cgroup answer behind a task
// inside execve on Linux 6.18; see package proc).
//
// Why this is enough against a hostile container:
//   - pid reuse: the pidfd, open before these reads, names one process
//     for good, and the reads are of that process only if it still holds
//     the pid after them (a pid is freed only when its process is reaped),
//     which the pidfd checks last: every later signal reaches that process
//     or none;
//   - a process reusing the pid in the container's own cgroup is the
//     container's own: its init, or the init of a namespace nested in it,
//     which the kill of the container ends too. A container cannot place
//     a process of the host or of another container in its cgroup, and
//     the root cgroup, or fuseguard's own, names no container and proves
//     nothing (containerCgroup);
//   - which FUSE connections are the container's is proven apart, by its
//     live mount tables and the connections' generations (see connSet),
//     not by this.
func (pr *Process) proveInit(p proc.FS, cgroup string) error {
	if !containerCgroup(p, cgroup) {
		return fmt.Errorf("the recorded cgroup %q names no one container: %w", cgroup, ErrUnprovenTarget)
	}
	st, err := p.Status(pr.pid)
	if err != nil {
		if errors.Is(err, proc.ErrNoProcess) {
			return fmt.Errorf("status: %w", ErrNoTarget)
		}
		return fmt.Errorf("status: %w: %w", ErrUnprovenTarget, err)
	}
	if err := namespaceInit(pr.pid, st); err != nil {
		return fmt.Errorf("%w: %w", ErrUnprovenTarget, err)
	}
	cg, err := p.Cgroup(pr.pid)
	if err != nil {
		if errors.Is(err, proc.ErrNoProcess) {
			return fmt.Errorf("cgroup: %w", ErrNoTarget)
		}
		return fmt.Errorf("cgroup: %w: %w", ErrUnprovenTarget, err)
	}
	if cg != cgroup {
		return fmt.Errorf("its cgroup %q is not the recorded %q: %w", cg, cgroup, ErrUnprovenTarget)
	}
	if err := unix.PidfdSendSignal(pr.fd, 0, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("reaped while read: %w", ErrNoTarget)
		}
		return fmt.Errorf("pidfd_send_signal 0: %w: %w", ErrUnprovenTarget, err)
	}
	return nil
}

// Close releases the pidfd.
func (pr *Process) Close() error { return unix.Close(pr.fd) }

// Signal sends sig through the pidfd. A process that already exited is not
// an error: the wait that follows sees it.
func (pr *Process) Signal(sig unix.Signal) error {
	err := unix.PidfdSendSignal(pr.fd, sig, nil, 0)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pidfd_send_signal %v to %d: %w", sig, pr.pid, err)
	}
	return nil
}

// pollSlice bounds one poll(2) so a cancelled context is noticed promptly.
const pollSlice = 50 * time.Millisecond

// Wait reports whether the whole thread group exited within d. The pidfd
// becomes readable only when every thread is gone, so a zombie leader with
// a thread stuck in FUSE still counts as alive. It returns ctx's error when
// ctx ends first.
func (pr *Process) Wait(ctx context.Context, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	fds := []unix.PollFd{{Fd: int32(pr.fd), Events: unix.POLLIN}}
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		slice := max(min(time.Until(deadline), pollSlice), 0)
		n, err := unix.Poll(fds, int((slice+time.Millisecond-1)/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("poll pidfd of %d: %w", pr.pid, err)
		}
		if n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
			return true, nil
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
	}
}
