package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/record"
)

// LockName is the watcher's lock file in the state directory.
const LockName = "watch.lock"

// lockRetry is how long Lock keeps trying: a probe (Holder) may hold the
// lock for a moment, which must not turn a starting watcher away.
const lockRetry = 200 * time.Millisecond

// Lock is the exclusive flock one watcher per node holds.
type Lock struct{ f *os.File }

// AcquireLock takes the lock in dir (created 0700 if missing, refused
// unless private: record.CheckStateDir) and writes the caller's pid
// into it; a symlink at the lock's path is refused. It fails with ErrLocked, naming the holder,
// when another watcher holds it.
func AcquireLock(dir string) (*Lock, error) {
	if err := record.EnsureStateDir(dir); err != nil {
		return nil, fmt.Errorf("watch lock: %w", err)
	}
	path := filepath.Join(dir, LockName)
	// Never through a symlink: the watcher runs as root, and the lock is
	// truncated and written.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("watch lock: %w", err)
	}
	deadline := time.Now().Add(lockRetry)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s held by pid %d", ErrLocked, path, readPID(path))
		}
		return nil, fmt.Errorf("watch lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("watch lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock. The file stays: removing it would race with the
// next watcher opening it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor releases the flock
	l.f = nil
	return err
}

// Holder reports the pid of the watcher holding the lock in dir, 0 when
// none does. It probes with a shared flock, held for a moment only.
func Holder(dir string) (int, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("watch lock: %w", err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	switch {
	case err == nil:
		return 0, nil // closing f drops the probe
	case errors.Is(err, unix.EWOULDBLOCK):
		return readPID(path), nil
	default:
		return 0, fmt.Errorf("watch lock %s: %w", path, err)
	}
}

// readPID reads the pid a holder wrote; -1 when it cannot be read (the
// holder may be between its flock and its write).
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return pid
}
