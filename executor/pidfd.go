package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
)

// pidfd holds init through a pidfd, so that Stop's SIGTERM and its wait
// for the exit reach exactly the process whose start time was checked and
// never depend on Docker.
type pidfd struct {
	fd  int
	pid int
}

// openPidfd opens init and checks its start time (when known). It returns
// an error wrapping killer.ErrNoTarget when there is no such process and
// killer.ErrStaleTarget when the pid was reused.
func openPidfd(p proc.FS, t killer.Target) (*pidfd, error) {
	fd, err := unix.PidfdOpen(t.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pidfd_open %d: %w", t.PID, killer.ErrNoTarget)
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", t.PID, err)
	}
	if t.StartTime != 0 {
		st, err := p.Stat(t.PID)
		switch {
		case errors.Is(err, proc.ErrNoProcess):
			unix.Close(fd)
			return nil, fmt.Errorf("pid %d: %w", t.PID, killer.ErrNoTarget)
		case err != nil:
			unix.Close(fd)
			return nil, fmt.Errorf("pid %d: %w", t.PID, err)
		case st.StartTime != t.StartTime:
			unix.Close(fd)
			return nil, fmt.Errorf("pid %d started at tick %d, expected %d: %w", t.PID, st.StartTime, t.StartTime, killer.ErrStaleTarget)
		}
	}
	return &pidfd{fd: fd, pid: t.PID}, nil
}

func (p *pidfd) close() { unix.Close(p.fd) }

// signal sends sig; a process that already exited is not an error.
func (p *pidfd) signal(sig unix.Signal) error {
	err := unix.PidfdSendSignal(p.fd, sig, nil, 0)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pidfd_send_signal %v to %d: %w", sig, p.pid, err)
	}
	return nil
}

// pollSlice bounds one poll(2), so that a cancelled context is noticed
// promptly.
const pollSlice = 50 * time.Millisecond

// wait reports whether the whole thread group exited within d: the pidfd
// turns readable only then.
func (p *pidfd) wait(ctx context.Context, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		slice := min(time.Until(deadline), pollSlice)
		if slice < 0 {
			slice = 0
		}
		n, err := unix.Poll(fds, int((slice+time.Millisecond-1)/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("poll pidfd of %d: %w", p.pid, err)
		}
		if n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
			return true, nil
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
	}
}
