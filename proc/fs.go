package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// FS reads a proc filesystem rooted at a directory; the zero FS reads /proc.
type FS struct{ root string }

// NewFS returns an FS rooted at root; "" means /proc.
func NewFS(root string) FS {
	if root == "" {
		root = "/proc"
	}
	return FS{root: root}
}

// Root is the directory the FS reads.
func (fs FS) Root() string {
	if fs.root == "" {
		return "/proc"
	}
	return fs.root
}

// path joins elements below the directory of pid.
func (fs FS) path(pid int, elem ...string) string {
	return filepath.Join(append([]string{fs.Root(), strconv.Itoa(pid)}, elem...)...)
}

// read returns the contents of a file below pid's directory and its path.
// An empty file is ErrUnreadable: the kernel prints nothing for a task it can
// no longer describe.
func (fs FS) read(pid int, elem ...string) ([]byte, string, error) {
	b, p, err := fs.readMaybeEmpty(pid, elem...)
	if err == nil && len(b) == 0 {
		err = fmt.Errorf("proc: read %s: %w: empty", p, ErrUnreadable)
	}
	return b, p, err
}

// readMaybeEmpty is read for files where empty is a valid answer.
func (fs FS) readMaybeEmpty(pid int, elem ...string) ([]byte, string, error) {
	p := fs.path(pid, elem...)
	b, err := readAll(p)
	if err != nil {
		return nil, p, fs.classify(pid, p, "read", err)
	}
	return b, p, nil
}

// readAll reads a whole file with raw syscalls. os.ReadFile would also
// fstat it and offer it to the runtime's poller, which costs several times
// the read itself for the small files /proc serves, and diagnosis reads
// many of them.
func readAll(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// classify wraps err, from an operation on p below pid's directory, in the
// sentinel a caller branches on: ErrNoProcess when the task is gone,
// ErrUnreadable when the task is there but the entry cannot be read. The
// original error stays in the chain (errors.Is(err, fs.ErrNotExist) works).
func (fs FS) classify(pid int, p, op string, err error) error {
	switch {
	case errors.Is(err, unix.ESRCH):
		return fmt.Errorf("proc: %s %s: %w: %w", op, p, ErrNoProcess, err)
	case errors.Is(err, unix.ENOENT):
		// The pid directory itself tells a dead task from a missing entry
		// (a closed fd, a namespace link of a task without nsproxy).
		if _, serr := os.Lstat(fs.path(pid)); serr != nil && errors.Is(serr, unix.ENOENT) {
			return fmt.Errorf("proc: %s %s: %w: %w", op, p, ErrNoProcess, err)
		}
		return fmt.Errorf("proc: %s %s: %w: %w", op, p, ErrUnreadable, err)
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("proc: %s %s: %w: %w", op, p, ErrUnreadable, err)
	}
	return fmt.Errorf("proc: %s %s: %w", op, p, err)
}
