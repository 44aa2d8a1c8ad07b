package obs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults of LogFile.
const (
	DefaultLogMaxSize = 10 << 20 // bytes
	DefaultLogKeep    = 2        // rotated files kept: name.1, name.2
)

// logLockWait bounds the wait for another process's rotation; after it the
// entry is appended without the size check rather than waited on.
const logLockWait = 500 * time.Millisecond

// LogFile is an append-only log file capped at MaxSize bytes: when an entry
// would take it past the cap, name is renamed to name.1 (name.1 to name.2,
// …, the oldest of Keep dropped) and a new name is started. Several
// processes may write the same file at once, as concurrent hook runs do:
// each Write is one write(2) with O_APPEND, and the size check, the
// rotation and the write happen under an exclusive flock of name.lock, so
// no entry is lost, split or written into a file already rotated away.
//
// The files are opened with O_NOFOLLOW and O_CLOEXEC: a symlink planted
// at name or name.lock is refused, never written through, and no child
// inherits a descriptor.
//
// A LogFile is safe for concurrent use; each Write should be one whole
// entry (a logrus logger writes each entry with one Write).
type LogFile struct {
	path    string
	maxSize int64
	keep    int

	mu   sync.Mutex
	f    *os.File // the file at path, as far as this process knows
	lock *os.File // path.lock, flocked around every write
}

// OpenLogFile opens (creating it 0600) the log file at path, capped at
// maxSize bytes with keep rotated files (DefaultLogMaxSize and
// DefaultLogKeep when zero or less). It fails when path or path.lock is a
// symlink.
func OpenLogFile(path string, maxSize int64, keep int) (*LogFile, error) {
	if maxSize <= 0 {
		maxSize = DefaultLogMaxSize
	}
	if keep <= 0 {
		keep = DefaultLogKeep
	}
	lock, err := openNoFollow(path+".lock", os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	l := &LogFile{path: path, maxSize: maxSize, keep: keep, lock: lock}
	if l.f, err = openNoFollow(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE); err != nil {
		lock.Close()
		return nil, err
	}
	return l, nil
}

// openNoFollow opens path with flag, O_NOFOLLOW and O_CLOEXEC, mode 0600.
func openNoFollow(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("log file %s: is a symlink, refused", path)
	}
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}

// Write appends p as one entry, rotating first when p would take the file
// past its cap.
func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	if !l.flock() {
		// Another writer holds the lock far too long (stopped?): append
		// unchecked rather than wait; O_APPEND keeps the entry whole.
		return l.f.Write(p)
	}
	defer unix.Flock(int(l.lock.Fd()), unix.LOCK_UN) //nolint:errcheck // closing drops it anyway
	if err := l.current(); err != nil {
		return 0, err
	}
	if fi, err := l.f.Stat(); err == nil && fi.Size() > 0 && fi.Size()+int64(len(p)) > l.maxSize {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	return l.f.Write(p)
}

// flock takes the exclusive lock, waiting at most logLockWait.
func (l *LogFile) flock() bool {
	deadline := time.Now().Add(logLockWait)
	for {
		err := unix.Flock(int(l.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return true
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) || time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// current reopens path when another process rotated it away from l.f.
func (l *LogFile) current() error {
	var open, named unix.Stat_t
	if err := unix.Fstat(int(l.f.Fd()), &open); err != nil {
		return fmt.Errorf("log file %s: %w", l.path, err)
	}
	if err := unix.Lstat(l.path, &named); err == nil && named.Dev == open.Dev && named.Ino == open.Ino {
		return nil
	}
	return l.reopen()
}

func (l *LogFile) reopen() error {
	f, err := openNoFollow(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE)
	if err != nil {
		return err
	}
	l.f.Close()
	l.f = f
	return nil
}

// rotate shifts path.N-1 to path.N, …, path to path.1, and starts path
// anew. rename(2) never follows a symlink at its target: a planted one is
// replaced, not written through.
func (l *LogFile) rotate() error {
	for i := l.keep - 1; i >= 1; i-- {
		err := os.Rename(l.rotated(i), l.rotated(i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("log file rotate: %w", err)
		}
	}
	if err := os.Rename(l.path, l.rotated(1)); err != nil {
		return fmt.Errorf("log file rotate: %w", err)
	}
	return l.reopen()
}

func (l *LogFile) rotated(i int) string { return l.path + "." + strconv.Itoa(i) }

// Close closes the file; later writes fail with os.ErrClosed.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.lock.Close()
	l.f = nil
	return err
}
