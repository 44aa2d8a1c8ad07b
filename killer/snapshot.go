package killer

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// heldSnapshot keeps init's mountinfo open from before the signal: it
// vanishes once init starts dying, but an open one holds a reference to the
// mount namespace and can be read later, and only if the kill turns out to
// need a diagnosis. A healthy kill pays for one open, not for parsing. The
// container's tasks are then found as init's descendants (they are all
// children of init while it waits in zap_pid_ns_processes).
type heldSnapshot struct {
	fd   int // init's mountinfo, a raw descriptor: see holdSnapshot
	path string
}

func holdSnapshot(p proc.FS, pid int) (*heldSnapshot, error) {
	path := filepath.Join(p.Root(), strconv.Itoa(pid), "mountinfo")
	// A raw open, kept raw: os.Open would also register the fd with the
	// runtime's poller, and os.NewFile asks for its flags and sets a
	// finalizer, costs the one step every kill pays should not carry. It
	// is read, if ever, through pread at offset 0.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hold mount table of %d: %w", pid, &os.PathError{Op: "open", Path: path, Err: err})
	}
	return &heldSnapshot{fd: fd, path: path}, nil
}

// close releases the namespaces; nil-safe.
func (h *heldSnapshot) close() {
	if h == nil {
		return
	}
	unix.Close(h.fd)
}

// record turns the held files into the record a diagnosis scopes by.
func (h *heldSnapshot) record(p proc.FS, st proc.Stat) (*record.Record, error) {
	rec := &record.Record{Version: record.RecordVersion, InitPID: st.PID, InitStartTime: st.StartTime}
	var errs []error
	if cg, err := p.Cgroup(st.PID); err == nil {
		rec.Cgroup = cg
	}
	mounts, err := h.mounts()
	if err != nil {
		errs = append(errs, err)
	}
	// An unreadable host table is no error: the connections are recorded
	// with unknown ownership, which the policy refuses to abort.
	rec.Merge(fuseconn.ReadHostTable(p).Classify(mounts), rec.Created)
	return rec, errors.Join(errs...)
}

// mounts reads the held table's FUSE mounts as they are now: the file
// follows its mount namespace, which it keeps alive.
func (h *heldSnapshot) mounts() ([]fuseconn.Mount, error) {
	mounts, err := fuseconn.ParseFUSEMounts(io.NewSectionReader(fdReaderAt(h.fd), 0, math.MaxInt64))
	if err != nil {
		return nil, fmt.Errorf("held mount table: %w", err)
	}
	return mounts, nil
}

// fdReaderAt reads a raw descriptor with pread, leaving its offset alone.
type fdReaderAt int

func (fd fdReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(int(fd), p, off)
	if err != nil {
		return 0, err
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}
