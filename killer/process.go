package killer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/proc"
)

// process is a target held through a pidfd: once open, signals and waits
// reach exactly the process whose start time was checked, never a reuse.
type process struct {
	fd   int
	pid  int
	stat proc.Stat // zero unless read at open
}

// openTarget opens a pidfd and then checks the start time, so a pid reused
// between the caller's observation and the open is refused.
func openTarget(p proc.FS, t Target) (*process, error) {
	if t.PID <= 0 {
		return nil, fmt.Errorf("pid %d: %w", t.PID, ErrNoTarget)
	}
	fd, err := unix.PidfdOpen(t.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pidfd_open %d: %w", t.PID, ErrNoTarget)
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", t.PID, err)
	}
	if t.StartTime == 0 {
		// Nothing to check; stat is read later, and only if needed.
		return &process{fd: fd, pid: t.PID}, nil
	}
	st, err := p.Stat(t.PID)
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
	return &process{fd: fd, pid: t.PID, stat: st}, nil
}

func (pr *process) close() { unix.Close(pr.fd) }

// kill sends SIGKILL through the pidfd. A process that already exited is
// not an error: the wait that follows sees it.
func (pr *process) kill() error {
	err := unix.PidfdSendSignal(pr.fd, unix.SIGKILL, nil, 0)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pidfd_send_signal SIGKILL to %d: %w", pr.pid, err)
	}
	return nil
}

// pollSlice bounds one poll(2) so a cancelled context is noticed promptly.
const pollSlice = 50 * time.Millisecond

// wait reports whether the whole thread group exited within d. The pidfd
// becomes readable only when every thread is gone, so a zombie leader with
// a thread stuck in FUSE still counts as alive.
func (pr *process) wait(ctx context.Context, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	fds := []unix.PollFd{{Fd: int32(pr.fd), Events: unix.POLLIN}}
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		slice := min(left, pollSlice)
		n, err := unix.Poll(fds, int(slice.Milliseconds())+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("poll pidfd of %d: %w", pr.pid, err)
		}
		if n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
}
