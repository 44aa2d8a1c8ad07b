package dockerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// FusectlDir is where the fusectl file system lists FUSE connections.
const FusectlDir = "/sys/fs/fuse/connections"

// FUSEConns returns the FUSE connection ids (the minor device number of
// each FUSE mount) in the mount tables of pids, of each of their threads
// and of all their descendants. It reads only /proc, never the mounts:
// a wedged container's init has lost its mount table, but a thread stuck
// on the connection still shows it.
func FUSEConns(pids ...int) ([]uint32, error) {
	pt, err := readProcTable()
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, pid := range pt.descendants(pids...) {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/mountinfo", pid))
		if err != nil {
			return nil, err
		}
		for _, path := range tasks {
			ids = append(ids, fuseConnsIn(path)...)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// fuseConnsIn lists the FUSE connections of one mountinfo file; a task
// that has exited or lost its mount namespace simply has none.
func fuseConnsIn(path string) []uint32 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	infos, err := mountinfo.GetMountsFromReader(f, fuseFilter)
	if err != nil {
		return nil
	}
	var ids []uint32
	for _, m := range infos {
		ids = append(ids, uint32(m.Minor))
	}
	return ids
}

func fuseFilter(m *mountinfo.Info) (skip, stop bool) {
	isFUSE := m.FSType == "fuse" || m.FSType == "fuseblk" || strings.HasPrefix(m.FSType, "fuse.")
	return !isFUSE, false
}

// hostFUSEConns are the FUSE connections in the test process's own mount
// namespace: shared with the host, never ours to abort at teardown.
func hostFUSEConns() map[uint32]bool {
	host := map[uint32]bool{}
	for _, id := range fuseConnsIn("/proc/self/mountinfo") {
		host[id] = true
	}
	return host
}

// AbortFUSE aborts the FUSE connections ids through fusectl, mounting
// fusectl when it is missing. A connection that is already gone is not an
// error.
func AbortFUSE(ids ...uint32) error {
	if len(ids) == 0 {
		return nil
	}
	if err := ensureFusectl(); err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		p := filepath.Join(FusectlDir, strconv.FormatUint(uint64(id), 10), "abort")
		err := writeAbort(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("abort connection %d: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func writeAbort(p string) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("1")); err != nil {
		return &os.PathError{Op: "write", Path: p, Err: err}
	}
	return nil
}

// ensureFusectl mounts fusectl on FusectlDir unless it is mounted. Another
// test package may mount it at the same moment; either mount serves.
func ensureFusectl() error {
	mounted, err := fusectlMounted()
	if err != nil || mounted {
		return err
	}
	err = unix.Mount("fusectl", FusectlDir, "fusectl", 0, "")
	if err == nil || errors.Is(err, unix.EBUSY) {
		return nil
	}
	return fmt.Errorf("mount fusectl on %s: %w", FusectlDir, err)
}

func fusectlMounted() (bool, error) {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("fusectl"))
	if err != nil {
		return false, err
	}
	for _, m := range infos {
		if m.Mountpoint == FusectlDir {
			return true, nil
		}
	}
	return false, nil
}
