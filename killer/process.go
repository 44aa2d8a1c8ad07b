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
// reach exactly the process whose start time was checked, never a process
// that reused its pid.
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
