package fuseconn

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
	return verifyDone(ctx, id.String(), func() (int, error) { return c.Waiting(id) })
}

// verifyDone polls waiting until it reads 0 or ErrNoSuchConnection.
func verifyDone(ctx context.Context, name string, waiting func() (int, error)) error {
	tick := time.NewTicker(abortPoll)
	defer tick.Stop()
	last := -1
	var lastErr error
	for {
		n, err := waiting()
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
				return fmt.Errorf("%w: connection %s: %w (%w)", ErrAbortIneffective, name, lastErr, ctx.Err())
			}
			return fmt.Errorf("%w: connection %s: %d requests still waiting (%w)", ErrAbortIneffective, name, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// Generation names one instance of a FUSE connection: the inode number of
// its fusectl directory /sys/fs/fuse/connections/<id>.
//
// Why this and not the id: the id is the superblock's anonymous device
// minor (get_anon_bdev), which the kernel hands to the next mount the
// moment the old superblock dies (ida_alloc: lowest free). fusectl
// (fs/fuse/control.c, fuse_ctl_add_dentry) builds every connection's
// directory from a fresh inode (new_inode + get_next_ino), so a connection
// that reuses a minor gets a new directory with a new inode number. The
// counter is 32-bit and shared with pipes and sockets: it could only repeat
// after ~4e9 inodes were handed out between the two instances. 0 means
// unknown ("unproven").
type Generation uint64

// ConnRef is one connection instance: its id and its generation.
type ConnRef struct {
	ID  ConnID     `json:"conn"`
	Gen Generation `json:"gen"`
}

func (r ConnRef) String() string { return fmt.Sprintf("%s (generation %d)", r.ID, r.Gen) }

// Generation returns the generation of the live connection id.
func (c Control) Generation(id ConnID) (Generation, error) {
	var st unix.Stat_t
	if err := unix.Lstat(c.connDir(id), &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("%w: %s", ErrNoSuchConnection, id)
		}
		return 0, &fs.PathError{Op: "lstat", Path: c.connDir(id), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("%w: %s is not a directory", ErrNoSuchConnection, c.connDir(id))
	}
	return Generation(st.Ino), nil
}

// Generations returns the generation of every live connection.
func (c Control) Generations() (map[ConnID]Generation, error) {
	ids, err := c.List()
	if err != nil {
		return nil, err
	}
	gens := make(map[ConnID]Generation, len(ids))
	for _, id := range ids {
		if g, err := c.Generation(id); err == nil {
			gens[id] = g
		}
	}
	return gens, nil
}

// Stamp proves which instance each connection read from a mount table is.
// before is Generations() taken before the table was read; Stamp reads them
// again and sets Gen on each connection whose id had the same generation
// both times: that instance held the id for the whole read, so the mount
// the table showed was its. Others keep Gen 0 (unproven). A nil before
// (fusectl unreadable) proves nothing.
func (c Control) Stamp(before map[ConnID]Generation, conns []Connection) []Connection {
	if before == nil {
		return conns
	}
	after, err := c.Generations()
	if err != nil {
		return conns
	}
	for i := range conns {
		if g, ok := before[conns[i].Conn]; ok && g != 0 && after[conns[i].Conn] == g {
			conns[i].Gen = g
		}
	}
	return conns
}

// instance is an open fusectl connection directory proven to be ref.
type instance struct {
	ref ConnRef
	fd  int
}

// openInstance opens ref's fusectl directory and checks its generation on
// the open descriptor. Files opened relative to it are that instance's:
// when the connection goes, fuse_ctl_remove_conn removes the directory's
// entries (a lookup in it then fails with ENOENT) and clears the files'
// i_private, so a write to a file opened earlier does nothing; a new
// connection with the same id gets a new directory. Checking and acting
// through one descriptor leaves no window for the id to be reused between.
func (c Control) openInstance(ref ConnRef) (*instance, error) {
	if ref.Gen == 0 {
		return nil, fmt.Errorf("%w: connection %s has no known generation", ErrConnectionReplaced, ref.ID)
	}
	if err := c.requireMounted(); err != nil {
		return nil, err
	}
	path := c.connDir(ref.ID)
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchConnection, ref.ID)
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if Generation(st.Ino) != ref.Gen {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: connection %s is generation %d now, not %d", ErrConnectionReplaced, ref.ID, st.Ino, ref.Gen)
	}
	return &instance{ref: ref, fd: fd}, nil
}

func (in *instance) close() { unix.Close(in.fd) }

// waiting reads the instance's waiting count; ErrNoSuchConnection once the
// instance is gone (its entries are removed, or the file reads empty).
func (in *instance) waiting() (int, error) {
	fd, err := unix.Openat(in.fd, "waiting", unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("%w: %s", ErrNoSuchConnection, in.ref)
		}
		return 0, fmt.Errorf("waiting of fuse connection %s: %w", in.ref, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 32)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return 0, fmt.Errorf("waiting of fuse connection %s: %w", in.ref, err)
	}
	s := bytes.TrimSpace(buf[:max(n, 0)])
	if len(s) == 0 {
		// fuse_conn_waiting_read returns nothing once i_private is cleared.
		return 0, fmt.Errorf("%w: %s", ErrNoSuchConnection, in.ref)
	}
	w, err := strconv.Atoi(string(s))
	if err != nil {
		return 0, fmt.Errorf("waiting of fuse connection %s: %w", in.ref, err)
	}
	return w, nil
}

func (in *instance) writeAbort() error {
	// No O_CREAT: never create a file in a foreign directory.
	fd, err := unix.Openat(in.fd, "abort", unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	_, werr := unix.Write(fd, []byte("1"))
	return errors.Join(werr, unix.Close(fd))
}

// WaitingInstance reads the waiting count of exactly the instance ref:
// ErrConnectionReplaced when the id now names another connection,
// ErrNoSuchConnection when it is gone.
func (c Control) WaitingInstance(ref ConnRef) (int, error) {
	in, err := c.openInstance(ref)
	if err != nil {
		return 0, err
	}
	defer in.close()
	return in.waiting()
}

// AbortInstance aborts exactly the connection instance ref and verifies,
// within ctx (DefaultAbortVerify without a deadline), that it took effect.
// It never touches another connection that has reused the id: it returns
// ErrConnectionReplaced then, and ErrNoSuchConnection when the id is gone.
// An instance that goes away during the call counts as aborted.
func (c Control) AbortInstance(ctx context.Context, ref ConnRef) error {
	in, err := c.openInstance(ref)
	if err != nil {
		return err
	}
	defer in.close()
	if err := in.writeAbort(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed after the check: the instance is gone
		}
		return fmt.Errorf("abort fuse connection %s: %w", ref, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultAbortVerify)
		defer cancel()
	}
	return verifyDone(ctx, ref.String(), in.waiting)
}
