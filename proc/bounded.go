package proc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrReadTimeout is returned (wrapped) when a read that can block did not
// return by the caller's deadline, or when an earlier read of the same task
// is still blocked: the task holds a lock the reader needs (see the package
// doc), so a second read would only block beside the first.
var ErrReadTimeout = errors.New("proc read did not return in time")

// Unanswered reports whether err says a bounded read got no answer in
// time (ErrReadTimeout, or ErrTooManyBlockedReads for a task whose earlier
// read is still blocked): the task exists, its file just did not answer.
func Unanswered(err error) bool {
	return errors.Is(err, ErrReadTimeout) || errors.Is(err, ErrTooManyBlockedReads)
}

// ErrTooManyBlockedReads is returned (wrapped) when MaxBlockedReads reads
// are still blocked in the kernel: a new one fails at once rather than
// park one more thread.
var ErrTooManyBlockedReads = errors.New("too many proc reads still blocked")

const (
	// MaxBlockedReads caps the bounded reads in flight in a process,
	// abandoned ones included: each abandoned read keeps one OS thread
	// asleep in the kernel until the task it reads lets go of its lock.
	MaxBlockedReads = 64
	// DefaultReadTimeout bounds a read whose context has no deadline.
	DefaultReadTimeout = time.Second
)

// inflight counts the bounded reads whose goroutine has not returned, and
// per pid those whose caller gave up on them.
type inflight struct {
	mu    sync.Mutex
	n     int
	stuck map[int]int
}

// reads is the process's one count of bounded reads. It is package state on
// purpose: what it caps, OS threads asleep in the kernel, belongs to the
// process, and every FS value (a root per test capture included) spends it.
var reads = &inflight{stuck: map[int]int{}}

// boundedRead is one read: whether its goroutine returned, and whether its
// caller gave up. Both change under inflight.mu.
type boundedRead struct {
	finished, abandoned bool
}

// start admits a read of pid, or refuses it: the pid has an abandoned read
// still blocked, or the process has MaxBlockedReads in flight.
func (f *inflight) start(pid int) (*boundedRead, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.stuck[pid]; n > 0 {
		return nil, fmt.Errorf("%w: %d earlier read(s) of %d still blocked", ErrReadTimeout, n, pid)
	}
	if f.n >= MaxBlockedReads {
		return nil, fmt.Errorf("%w: %d in flight", ErrTooManyBlockedReads, f.n)
	}
	f.n++
	return &boundedRead{}, nil
}

// finish is called by the read's goroutine when read(2) returned.
func (f *inflight) finish(pid int, r *boundedRead) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	r.finished = true
	if r.abandoned {
		if f.stuck[pid]--; f.stuck[pid] <= 0 {
			delete(f.stuck, pid)
		}
	}
}

// abandon marks r given up, unless its goroutine finished meanwhile; it
// reports whether it did.
func (f *inflight) abandon(pid int, r *boundedRead) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.finished {
		return false
	}
	r.abandoned = true
	f.stuck[pid]++
	return true
}

// blocked reports the bounded reads in flight, and those abandoned, in this
// process.
func (f *inflight) blocked() (inFlight, abandoned int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.stuck {
		abandoned += n
	}
	return f.n, abandoned
}

// BlockedReads reports how many bounded reads of this process are in
// flight and how many of those were abandoned at their caller's deadline
// (their threads still asleep in the kernel).
func BlockedReads() (inFlight, abandoned int) { return reads.blocked() }

// readBounded is read for the files whose read(2) can sleep on a lock the
// task holds; see bounded.
func (fs FS) readBounded(ctx context.Context, pid int, allowEmpty bool, elem ...string) ([]byte, string, error) {
	p := fs.path(pid, elem...)
	b, err := fs.bounded(ctx, pid, p, "read", func() ([]byte, error) { return readAll(p) })
	if err != nil {
		return nil, p, err
	}
	if !allowEmpty && len(b) == 0 {
		return nil, p, fmt.Errorf("proc: read %s: %w: empty", p, ErrUnreadable)
	}
	return b, p, nil
}

// bounded runs do, an operation op on p below pid's directory that can
// sleep on a lock the task holds, in a goroutine, and returns at ctx's
// deadline (DefaultReadTimeout when ctx has none) whether or not do did.
//
// A goroutine blocked in a system call has an OS thread to itself (the
// runtime hands its P to another thread), so an abandoned read costs one
// sleeping thread and goroutine until the task lets go, and nothing else;
// the thread then returns to the runtime's pool. Locking the goroutine to
// its thread would buy nothing and make the runtime destroy the thread
// afterwards.
func (fs FS) bounded(ctx context.Context, pid int, p, op string, do func() ([]byte, error)) ([]byte, error) {
	b, err := runBounded(ctx, pid, op+" "+p, do)
	if err != nil && !Unanswered(err) {
		return nil, fs.classify(pid, p, op, err)
	}
	return b, err
}

// PreadBounded reads, from offset 0 and at most size bytes, the file that
// fd holds open: one of pid's /proc files that can sleep on a lock of the
// task (stat, say, held open by a watcher so that the pid cannot be
// reused under it). It is bounded and counted like Stat; the buffer is
// the read's own, so an abandoned read never writes into the caller's.
func PreadBounded(ctx context.Context, pid, fd, size int) ([]byte, error) {
	return runBounded(ctx, pid, fmt.Sprintf("pread fd %d of %d", fd, pid), func() ([]byte, error) {
		b := make([]byte, size)
		for {
			n, err := unix.Pread(fd, b, 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return nil, err
			}
			return b[:n], nil
		}
	})
}

// runBounded runs do, which reads what of pid and can sleep on a lock the
// task holds, in a goroutine, and returns at ctx's deadline
// (DefaultReadTimeout when it has none) whether or not do did; do's own
// error comes back unwrapped.
func runBounded(ctx context.Context, pid int, what string, do func() ([]byte, error)) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultReadTimeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("proc: %s: %w: %w", what, ErrReadTimeout, err)
	}
	r, err := reads.start(pid)
	if err != nil {
		return nil, fmt.Errorf("proc: %s: %w", what, err)
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned goroutine must not block on it
	go func() {
		b, err := do()
		reads.finish(pid, r)
		done <- result{b, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		if reads.abandon(pid, r) {
			return nil, fmt.Errorf("proc: %s: %w: %w", what, ErrReadTimeout, context.Cause(ctx))
		}
		res = <-done // it returned meanwhile: its answer is good
	}
	return res.b, res.err
}
