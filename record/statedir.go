package record

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnsafeStateDir is returned for a state directory that someone other
// than its user could change: the records in it decide which FUSE
// connections fuseguard aborts.
var ErrUnsafeStateDir = errors.New("unsafe state directory")

// staleTempAge is how old a temporary file of Save must be before it counts
// as left over by an interrupted save rather than one in progress.
const staleTempAge = time.Minute

// CheckStateDir refuses dir unless it is a directory (not a symlink to
// one) owned by the effective uid — root, as fuseguard runs — with no
// access for group or others (0700). A missing dir passes: Save creates it
// 0700. The error is one line naming dir and what is wrong, and wraps
// ErrUnsafeStateDir.
func CheckStateDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	var what string
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		what = "is a symlink, want a directory"
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		what = "is not a directory"
	case int(st.Uid) != os.Geteuid():
		what = fmt.Sprintf("is owned by uid %d, want %d", st.Uid, os.Geteuid())
	case st.Mode&0o077 != 0:
		what = fmt.Sprintf("has mode %#o, want 0700 (no access for group or others)", st.Mode&0o7777)
	default:
		return nil
	}
	return fmt.Errorf("%w: %s %s", ErrUnsafeStateDir, dir, what)
}

// EnsureStateDir creates dir 0700 (and its parents) when it is missing,
// and then checks it with CheckStateDir: an existing dir is refused, never
// changed.
func EnsureStateDir(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		// MkdirAll's mode goes through the umask; make it exact.
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	return CheckStateDir(dir)
}

// readNoFollow reads the regular file at path without following a symlink
// there.
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s: is a symlink, refused", path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// removeStaleTemps deletes the temporary files of saves that never
// finished (the process died between create and rename): regular files
// named like Save's temporaries and older than staleTempAge, so that a
// save in progress keeps its file.
func (s Store) removeStaleTemps(entries []fs.DirEntry, now time.Time) error {
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < staleTempAge {
			continue // gone meanwhile, or a save in progress
		}
		if err := os.Remove(filepath.Join(s.Dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove stale temporary file: %w", err))
		}
	}
	return errors.Join(errs...)
}
