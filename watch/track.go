package watch

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/proc"
)

// errStale: the record's init is gone, or its pid belongs to another
// process now.
var errStale = errors.New("init gone or pid reused")

// errRootMoved: the held mountinfo descriptor shows no mount at all. The
// kernel shows only the mounts under the root the task had when the file
// was opened, and the createRuntime hook records init before its
// pivot_root: the descriptor must be opened again.
var errRootMoved = errors.New("no mount visible through the held mountinfo")

// tracked is one record being watched and the descriptors that watch it.
type tracked struct {
	rec     *fuseguard.Record
	pidfd   int    // readable once init has exited
	statFD  int    // /proc/PID/stat, pread when init may be exiting
	schedFD int    // /proc/PID/schedstat, pread every CheckInterval; -1 without CONFIG_SCHED_INFO
	lastRun uint64 // init's CPU time (ns) at the last look
	haveRun bool
	mntFD   int // /proc/PID/mountinfo, POLLPRI on mount-table changes; -1 when unreadable

	exitingSince time.Time // zero while init is not exiting
	rescuing     bool
	nextRescue   time.Time
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
func openTracked(p proc.FS, rec *fuseguard.Record) (*tracked, error) {
	t := &tracked{rec: rec, pidfd: -1, statFD: -1, schedFD: -1, mntFD: -1}
	pid := rec.InitPID
	if pid <= 0 {
		return nil, fmt.Errorf("record %s: init pid %d: %w", rec.ID, pid, errStale)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("record %s: pid %d: %w", rec.ID, pid, errStale)
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

// readStat rereads init's /proc/PID/stat through the held descriptor: no
// path lookup, and ESRCH once init is reaped, even if its pid is reused.
func (t *tracked) readStat(b *[statBuf]byte) ([]byte, error) {
	n, err := unix.Pread(t.statFD, b[:], 0)
	if err != nil {
		return nil, fmt.Errorf("read stat of %d: %w", t.rec.InitPID, err)
	}
	return b[:n], nil
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
	var b [statBuf]byte
	raw, err := t.readStat(&b)
	if err != nil {
		return proc.Stat{}, err
	}
	return proc.ParseStat(raw)
}

// readMounts reads the held mountinfo descriptor from the start.
func (t *tracked) readMounts(buf []byte) ([]fuseguard.Mount, []byte, error) {
	if _, err := unix.Seek(t.mntFD, 0, 0); err != nil {
		return nil, buf, fmt.Errorf("seek mountinfo of %d: %w", t.rec.InitPID, err)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(cap(buf), 64<<10))
		}
		n, err := unix.Read(t.mntFD, buf[len(buf):cap(buf)])
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
	infos, err := proc.ParseMountInfo(buf)
	if err != nil {
		return nil, buf, fmt.Errorf("mountinfo of %d: %w", t.rec.InitPID, err)
	}
	return fuseguard.FUSEMounts(infos), buf, nil
}

// reopenMounts opens init's mountinfo again, under its current root. The
// held stat descriptor, read after the open, proves that the path still
// named the same process.
func (t *tracked) reopenMounts(p proc.FS) error {
	fd, err := unix.Open(filepath.Join(p.Root(), strconv.Itoa(t.rec.InitPID), "mountinfo"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reopen mountinfo of %d: %w", t.rec.InitPID, err)
	}
	var b [statBuf]byte
	if _, err := t.readStat(&b); err != nil {
		unix.Close(fd)
		return err
	}
	unix.Close(t.mntFD)
	t.mntFD = fd
	return nil
}

// sameInit reports whether two records name the same init process.
func sameInit(a, b *fuseguard.Record) bool {
	return a.InitPID == b.InitPID && a.InitStartTime == b.InitStartTime
}

// copyRecord is a deep copy for a rescue running beside the loop.
func copyRecord(r *fuseguard.Record) *fuseguard.Record {
	c := *r
	c.Connections = slices.Clone(r.Connections)
	return &c
}
