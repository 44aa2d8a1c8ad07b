package fuseguard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// FusectlMagic is FUSE_CTL_SUPER_MAGIC, the statfs f_type of fusectl
// (golang.org/x/sys/unix does not define it).
const FusectlMagic = 0x65735543

// DefaultAbortVerify bounds Abort's verification when ctx has no deadline.
const DefaultAbortVerify = 2 * time.Second

// abortPoll is how often Abort re-reads waiting; the kernel ends the
// requests at once, the waiters need only be scheduled.
const abortPoll = 5 * time.Millisecond

// NewControl returns a Control on dir; "" means DefaultFusectlDir.
func NewControl(dir string) Control {
	if dir == "" {
		dir = DefaultFusectlDir
	}
	return Control{Dir: dir}
}

// Mounted reports whether fusectl is mounted on Dir.
func (c Control) Mounted() (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(c.dir(), &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, &fs.PathError{Op: "statfs", Path: c.dir(), Err: err}
	}
	return uint32(st.Type) == FusectlMagic, nil
}

// Ensure mounts fusectl on Dir when it is not mounted there yet.
func (c Control) Ensure() error {
	ok, err := c.Mounted()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFusectlUnavailable, err)
	}
	if ok {
		return nil
	}
	if err := os.MkdirAll(c.dir(), 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrFusectlUnavailable, err)
	}
	if err := unix.Mount("fusectl", c.dir(), "fusectl", 0, ""); err != nil {
		// EBUSY: another process mounted it between our check and our
		// mount (fusectl is a single superblock). Mounted is what counts.
		if ok, _ := c.Mounted(); errors.Is(err, unix.EBUSY) && ok {
			return nil
		}
		return fmt.Errorf("%w: mount fusectl on %s: %w", ErrFusectlUnavailable, c.dir(), err)
	}
	return nil
}

// requireMounted turns "fusectl is not there" into ErrFusectlUnavailable,
// so that an unmounted Dir never reads as "no such connection".
func (c Control) requireMounted() error {
	ok, err := c.Mounted()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFusectlUnavailable, err)
	}
	if !ok {
		return fmt.Errorf("%w: not mounted on %s", ErrFusectlUnavailable, c.dir())
	}
	return nil
}

// List lists the live connection ids.
func (c Control) List() ([]ConnID, error) {
	if err := c.requireMounted(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(c.dir())
	if err != nil {
		return nil, fmt.Errorf("list fuse connections: %w", err)
	}
	var ids []ConnID
	for _, e := range entries {
		id, err := ParseConnID(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// dir is Dir, or DefaultFusectlDir for the zero Control.
func (c Control) dir() string {
	if c.Dir == "" {
		return DefaultFusectlDir
	}
	return c.Dir
}

func (c Control) connDir(id ConnID) string { return filepath.Join(c.dir(), id.String()) }

// Exists reports whether the connection is live.
func (c Control) Exists(id ConnID) bool {
	st, err := os.Lstat(c.connDir(id))
	return err == nil && st.IsDir()
}

// Waiting reads the number of requests waiting on a connection.
func (c Control) Waiting(id ConnID) (int, error) {
	b, err := os.ReadFile(filepath.Join(c.connDir(id), "waiting"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("%w: %s: %w", ErrNoSuchConnection, id, err)
		}
		return 0, fmt.Errorf("waiting of fuse connection %s: %w", id, err)
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0, fmt.Errorf("waiting of fuse connection %s: %w", id, err)
	}
	return n, nil
}

// Abort aborts a connection and verifies, within ctx, that it took effect
// (waiting drops to 0 or the connection is gone). Aborting an aborted or
// vanished connection is not an error for an id that existed; an id that
// never existed gives ErrNoSuchConnection.
//
// Control keeps no state: an id that vanished before the call is
// indistinguishable from one that never existed and gives
// ErrNoSuchConnection; a caller holding a record treats that as done.
// Without a deadline in ctx the verification is bounded by
// DefaultAbortVerify.
func (c Control) Abort(ctx context.Context, id ConnID) error {
	if err := c.requireMounted(); err != nil {
		return err
	}
	if !c.Exists(id) {
		return fmt.Errorf("%w: %s", ErrNoSuchConnection, id)
	}
	if err := c.writeAbort(id); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // gone between the check and the write: done
		}
		return fmt.Errorf("abort fuse connection %s: %w", id, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultAbortVerify)
		defer cancel()
	}
	return c.verifyAborted(ctx, id)
}

func (c Control) writeAbort(id ConnID) error {
	// No O_CREAT: on a stale or foreign Dir, never create a file.
	f, err := os.OpenFile(filepath.Join(c.connDir(id), "abort"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte("1"))
	cerr := f.Close()
	return errors.Join(werr, cerr)
}

// verifyAborted polls until waiting is 0 or the connection is gone.
func (c Control) verifyAborted(ctx context.Context, id ConnID) error {
	tick := time.NewTicker(abortPoll)
	defer tick.Stop()
	last := -1
	var lastErr error
	for {
		n, err := c.Waiting(id)
		switch {
		case errors.Is(err, ErrNoSuchConnection):
			return nil
		case err == nil && n == 0:
			return nil
		}
		last, lastErr = n, err
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("%w: connection %s: %w (%w)", ErrAbortIneffective, id, lastErr, ctx.Err())
			}
			return fmt.Errorf("%w: connection %s: %d requests still waiting (%w)", ErrAbortIneffective, id, last, ctx.Err())
		case <-tick.C:
		}
	}
}
