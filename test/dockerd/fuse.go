package dockerd

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
)

// FusectlDir is where the fusectl file system lists FUSE connections.
const FusectlDir = fuseconn.DefaultFusectlDir

// abortVerifyTimeout bounds, per connection, the wait for an aborted
// connection's requests to end; the kernel ends them at once.
const abortVerifyTimeout = 2 * time.Second

// FUSEConns returns the FUSE connection ids (the minor device number of
// each FUSE mount) in the mount tables of pids, of each of their threads
// and of all their descendants. It reads only /proc, never the mounts:
// a wedged container's init has lost its mount table, but a thread stuck
// on the connection still shows it.
func FUSEConns(pids ...int) ([]uint32, error) {
	p := proc.NewFS("")
	all, err := p.Descendants(pids...)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, pid := range all {
		tids, _ := p.Tasks(pid) // none once it is reaped
		for _, tid := range tids {
			ids = append(ids, fuseConnsOf(p, tid)...)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// fuseConnsOf lists the FUSE connections in the mount table of task tid; a
// task that has exited or lost its mount namespace simply has none.
func fuseConnsOf(p proc.FS, tid int) []uint32 {
	infos, err := p.MountInfo(tid)
	if err != nil {
		return nil
	}
	var ids []uint32
	for _, m := range fuseconn.FUSEMounts(infos) {
		ids = append(ids, uint32(m.Conn))
	}
	return ids
}

// hostFUSEConns are the FUSE connections in the test process's own mount
// namespace: shared with the host, never ours to abort at teardown.
func hostFUSEConns() map[uint32]bool {
	host := map[uint32]bool{}
	for _, id := range fuseConnsOf(proc.NewFS(""), os.Getpid()) {
		host[id] = true
	}
	return host
}

// OwnedFUSEConns is FUSEConns of pids without the connections also mounted
// in the test's own mount namespace: a host mount bind-mounted into a
// container is not the container's.
func OwnedFUSEConns(pids ...int) ([]uint32, error) {
	conns, err := FUSEConns(pids...)
	if err != nil {
		return nil, err
	}
	host := hostFUSEConns()
	return slices.DeleteFunc(conns, func(id uint32) bool { return host[id] }), nil
}

// AbortContainersFUSE aborts the FUSE connections of the processes that
// processes lists (a harness's containers), except those also mounted in
// the test's own namespace (a host mount bind-mounted into a container is
// not the container's): a container wedged in FUSE can then die and be
// removed. what prefixes the messages.
func AbortContainersFUSE(t testing.TB, what string, processes func() ([]int, error)) {
	pids, err := processes()
	if err != nil {
		t.Logf("%s: listing container processes: %v", what, err)
		return
	}
	if len(pids) == 0 {
		return
	}
	conns, err := OwnedFUSEConns(pids...)
	if err != nil {
		t.Logf("%s: FUSE connections of %v: %v", what, pids, err)
		return
	}
	if len(conns) == 0 {
		return
	}
	t.Logf("%s: aborting FUSE connections %v of container processes", what, conns)
	if err := AbortFUSE(conns...); err != nil {
		t.Logf("%s: %v", what, err)
	}
}

// AbortFUSEOf aborts those of ids still mounted in the mount table of pids
// or of one of their descendants' tasks. Connection ids are reused at once:
// by the time a cleanup runs, an id may name another test's connection, so a
// test never aborts an id on trust.
func AbortFUSEOf(pids []int, ids ...uint32) error {
	live, err := FUSEConns(pids...)
	if err != nil {
		return err
	}
	return AbortFUSE(slices.DeleteFunc(slices.Clone(ids), func(id uint32) bool { return !slices.Contains(live, id) })...)
}

// AbortFUSE aborts those of ids mounted in one of this daemon's containers.
func (d *Daemon) AbortFUSE(ids ...uint32) error {
	pids, err := d.ContainerProcesses()
	if err != nil {
		return err
	}
	return AbortFUSEOf(pids, ids...)
}

// AbortFUSE aborts the FUSE connections ids through fusectl, mounting
// fusectl when it is missing, and waits up to abortVerifyTimeout for each
// one's requests to end. A connection that is already gone is not an
// error.
func AbortFUSE(ids ...uint32) error {
	if len(ids) == 0 {
		return nil
	}
	ctl := fuseconn.NewControl(FusectlDir)
	if err := ctl.Ensure(); err != nil {
		// Another test package may mount it at the same moment (EBUSY):
		// either mount serves.
		if ok, _ := ctl.Mounted(); !ok {
			return err
		}
	}
	var errs []error
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), abortVerifyTimeout)
		err := ctl.Abort(ctx, fuseconn.ConnID(id))
		cancel()
		if err != nil && !errors.Is(err, fuseconn.ErrNoSuchConnection) {
			errs = append(errs, err) // it names the connection
		}
	}
	return errors.Join(errs...)
}
