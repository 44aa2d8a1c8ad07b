package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// errStale: the record's init is gone, or its pid belongs to another
// process now.
var errStale = errors.New("init gone or pid reused")

// errRootMoved: the held mountinfo descriptor shows no mount at all. The
// kernel shows only the mounts under the root the task had when the file
// was opened, and the createRuntime hook records init before its
// pivot_root: the descriptor must be opened again.
var errRootMoved = errors.New("no mount visible through the held mountinfo")

// errMountTableTooBig: the mount table is larger than MaxMountInfo. The
// record keeps what it has: nothing of a table that was not read whole is
// recorded.
var errMountTableTooBig = errors.New("mount table larger than the read cap")

// tracked is one record being watched and the descriptors that watch it.
type tracked struct {
	rec     *record.Record
	stamp   record.Stamp // of the record file rec was last loaded from; zero: reload at the rescan
	pidfd   int          // readable once init has exited
	statFD  int          // /proc/PID/stat, pread when init may be exiting
	schedFD int          // /proc/PID/schedstat, pread every CheckInterval; -1 without CONFIG_SCHED_INFO
	lastRun uint64       // init's CPU time (ns) at the last look
	haveRun bool
	// statBlocked: the last read of init's stat did not answer in time.
	statBlocked bool
	mntFD       int // /proc/PID/mountinfo, POLLPRI on mount-table changes; -1 when unreadable

	// Coalescing of mount-table changes: after a read the descriptor is
	// left out of poll until mntNext.
	mntNext time.Time
	cooling bool
	// mntChanged: the table changed while cooling; it is read at its slot.
	mntChanged bool
	mntErr     string // the last failed read of the mount table, "" once one works
	dropped    int    // connections of the last read left out of the record: MaxConnections
	fullLogged bool   // the full record was logged (once per container)

	exitingSince time.Time  // zero while init is not exiting
	queued       bool       // detected, waiting for a rescue slot
	rescue       *rescueRun // the rescue in flight (maybe abandoned), nil when none
	failures     int        // rescues in a row that left init stuck
	lastErr      string     // the last failed rescue's error
	nextRescue   time.Time  // no rescue before: the backoff after a failure
}

func (t *tracked) close() {
	for _, fd := range []int{t.pidfd, t.statFD, t.schedFD, t.mntFD} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	t.pidfd, t.statFD, t.schedFD, t.mntFD = -1, -1, -1, -1
}

// openTracked opens init through a pidfd first and checks its start time
// second: from then on the descriptors name exactly that process, whatever
// happens to its pid.
func openTracked(p proc.FS, rec *record.Record) (*tracked, error) {
	t := &tracked{rec: rec, pidfd: -1, statFD: -1, schedFD: -1, mntFD: -1}
	pid := rec.InitPID
	if pid <= 0 {
		return nil, fmt.Errorf("record %s: init pid %d: %w", rec.ID, pid, errStale)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ESRCH):
			return nil, fmt.Errorf("record %s: pid %d: %w", rec.ID, pid, errStale)
		case errors.Is(err, unix.ENOSYS):
			return nil, fmt.Errorf("record %s: pidfd_open %d: %w: %w", rec.ID, pid, killer.ErrNoPidfd, err)
		}
		return nil, fmt.Errorf("record %s: pidfd_open %d: %w", rec.ID, pid, err)
	}
	t.pidfd = fd
	dir := filepath.Join(p.Root(), strconv.Itoa(pid))
	if t.statFD, err = unix.Open(filepath.Join(dir, "stat"), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		t.close()
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("record %s: pid %d: %w", rec.ID, pid, errStale)
		}
		return nil, fmt.Errorf("record %s: open stat of %d: %w", rec.ID, pid, err)
	}
	st, err := t.stat()
	if err != nil {
		t.close()
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("record %s: pid %d: %w", rec.ID, pid, errStale)
		}
		return nil, fmt.Errorf("record %s: %w", rec.ID, err)
	}
	if st.StartTime != rec.InitStartTime || st.State == "X" {
		t.close()
		return nil, fmt.Errorf("record %s: pid %d started at tick %d, recorded %d: %w", rec.ID, pid, st.StartTime, rec.InitStartTime, errStale)
	}
	if fd, err := unix.Open(filepath.Join(dir, "schedstat"), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		t.schedFD = fd
	}
	// Unreadable once init is in do_exit: a watcher started mid-incident
	// still tracks the exit, with the connections recorded so far.
	if fd, err := unix.Open(filepath.Join(dir, "mountinfo"), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		t.mntFD = fd
	}
	return t, nil
}

// statBuf is enough for any /proc/PID/stat (52 numbers and a 16-byte comm).
const statBuf = 1024

// statReadTimeout bounds one read of init's /proc/PID/stat. A read takes
// microseconds unless it sleeps behind a lock of the task (see readStat),
// and then it would sleep as long as the task holds it.
const statReadTimeout = 100 * time.Millisecond

// readStat rereads init's /proc/PID/stat through the held descriptor: no
// path lookup, and ESRCH once init is reaped, even if its pid is reused.
//
// The read can sleep: do_task_stat waits for the task's exec lock, which
// an init inside execve holds for as long as its exec does, and an exec
// that flushes a close-on-exec file on a FUSE mount whose daemon never
// answers never ends (the W6 scenario; see package proc). So the read runs
// bounded (proc.PreadBounded): the loop waits statReadTimeout once, then
// every later read of that init fails at once (proc.ErrReadTimeout) until
// the blocked one returns. Such an init is not exiting (it is in execve),
// and the loop goes on for everyone else.
func (t *tracked) readStat() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), statReadTimeout)
	defer cancel()
	b, err := proc.PreadBounded(ctx, t.rec.InitPID, t.statFD, statBuf)
	if err != nil {
		return nil, fmt.Errorf("read stat of %d: %w", t.rec.InitPID, err)
	}
	return b, nil
}

// ran reports whether init has run on a CPU since the last call (true when
// that cannot be told). To start exiting init must run, so an init that has
// not run cannot have started: its /proc/PID/stat, three times dearer than
// schedstat to read, is skipped.
func (t *tracked) ran(b *[statBuf]byte) bool {
	if t.schedFD < 0 {
		return true
	}
	n, err := unix.Pread(t.schedFD, b[:], 0)
	if err != nil {
		t.haveRun = false
		return true
	}
	run, ok := parseRunTime(b[:n])
	if !ok {
		t.haveRun = false
		return true
	}
	changed := !t.haveRun || run != t.lastRun
	t.lastRun, t.haveRun = run, true
	return changed
}

// stat is the full parse, for the start-time check.
func (t *tracked) stat() (proc.Stat, error) {
	raw, err := t.readStat()
	if err != nil {
		return proc.Stat{}, err
	}
	return proc.ParseStat(raw)
}

// fuseTypeMark precedes the fs type of every FUSE mount in mountinfo.
const fuseTypeMark = " - fuse"

// readMounts reads the held mountinfo descriptor from the start, at most
// limit bytes (errMountTableTooBig past them).
//
// The read takes the kernel's namespace_sem for reading (m_start in
// fs/namespace.c) while it generates each chunk. Writers hold it only for
// the mount-tree change itself, never across a FUSE request (a FUSE
// superblock's teardown runs after namespace_unlock), and showing a FUSE
// mount sends no request (fuse_show_options prints the options held in
// memory). So the read waits at most behind other mount(2)/umount(2)
// calls, never on a FUSE daemon or on a task's exec lock. Nothing else
// guards the loop here: the read runs on it, under that kernel property.
// Its cost is bounded by limit and, per container, by MountReadInterval.
func (t *tracked) readMounts(buf []byte, limit int) ([]fuseconn.Mount, []byte, error) {
	if _, err := unix.Seek(t.mntFD, 0, 0); err != nil {
		return nil, buf, fmt.Errorf("seek mountinfo of %d: %w", t.rec.InitPID, err)
	}
	buf = buf[:0]
	for {
		if len(buf) >= limit {
			return nil, buf, fmt.Errorf("mountinfo of %d: %w (%d bytes)", t.rec.InitPID, errMountTableTooBig, limit)
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max(cap(buf), 64<<10), limit-len(buf)))
		}
		n, err := unix.Read(t.mntFD, buf[len(buf):min(cap(buf), limit)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, buf, fmt.Errorf("read mountinfo of %d: %w", t.rec.InitPID, err)
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	if len(buf) == 0 {
		return nil, buf, fmt.Errorf("mountinfo of %d: %w", t.rec.InitPID, errRootMoved)
	}
	// A table without a FUSE mount is not parsed: every FUSE fs type
	// (fuseconn.IsFUSE) starts with "fuse" right after the " - " that
	// ends a line's optional fields, and no other field holds " - " (the
	// kernel escapes spaces in paths and in the fs type).
	if !bytes.Contains(buf, []byte(fuseTypeMark)) {
		return nil, buf, nil
	}
	infos, err := proc.ParseMountInfo(buf)
	if err != nil {
		return nil, buf, fmt.Errorf("mountinfo of %d: %w", t.rec.InitPID, err)
	}
	return fuseconn.FUSEMounts(infos), buf, nil
}

// reopenMounts opens init's mountinfo again, under its current root. The
// held stat descriptor, read after the open, proves that the path still
// named the same process.
func (t *tracked) reopenMounts(p proc.FS) error {
	fd, err := unix.Open(filepath.Join(p.Root(), strconv.Itoa(t.rec.InitPID), "mountinfo"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reopen mountinfo of %d: %w", t.rec.InitPID, err)
	}
	if _, err := t.readStat(); err != nil {
		unix.Close(fd)
		return err
	}
	unix.Close(t.mntFD)
	t.mntFD = fd
	return nil
}

// sameInit reports whether two records name the same init process.
func sameInit(a, b *record.Record) bool {
	return a.InitPID == b.InitPID && a.InitStartTime == b.InitStartTime
}

// copyRecord is a deep copy for a rescue running beside the loop.
func copyRecord(r *record.Record) *record.Record {
	c := *r
	c.Connections = slices.Clone(r.Connections)
	return &c
}
