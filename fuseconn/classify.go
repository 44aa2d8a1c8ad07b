package fuseconn

import (
	"context"
	"fmt"
	"os"

	"github.com/fuseguard/fuseguard/proc"
)

// devKey identifies a connection by its device number; FUSE majors are 0,
// but comparing both keeps a non-FUSE collision impossible.
type devKey struct {
	major int
	conn  ConnID
}

// Classify returns one Connection per distinct connection id in container
// (first mount wins), owned when host has no mount with the same id. host
// must be the host's whole FUSE table: use HostTable.Classify when it may
// not have been readable.
func Classify(container, host []Mount) []Connection {
	shared := make(map[devKey]bool, len(host))
	for _, m := range host {
		shared[devKey{m.Major, m.Conn}] = true
	}
	seen := make(map[ConnID]bool, len(container))
	var out []Connection
	for _, m := range container {
		// A connection bind-mounted twice is still one connection.
		if seen[m.Conn] {
			continue
		}
		seen[m.Conn] = true
		out = append(out, Connection{Mount: m, Owned: !shared[devKey{m.Major, m.Conn}]})
	}
	return out
}

// HostTable is the host's FUSE mounts, or why they could not be read.
type HostTable struct {
	Mounts []Mount
	// Err is why the host's table could not be read. Ownership is then
	// unknown, and nothing is owned: "not in the host's table" proves
	// nothing about a table we did not see.
	Err error
}

// ReadHostTable reads the host's FUSE mounts; a failure is kept in Err.
func ReadHostTable(p proc.FS) HostTable {
	mounts, err := HostMounts(p)
	return HostTable{Mounts: mounts, Err: err}
}

// Classify classifies container's mounts against the host's table; when
// that was unreadable, every connection has unknown ownership and none is
// owned.
func (h HostTable) Classify(container []Mount) []Connection {
	out := Classify(container, h.Mounts)
	if h.Err == nil {
		return out
	}
	why := "host mount table unreadable: " + h.Err.Error()
	for i := range out {
		out[i].Owned = false
		out[i].OwnershipUnknown = why
	}
	return out
}

// HostMounts reads the host's FUSE mounts from /proc/1/mountinfo.
//
// Our own table stands in for pid 1's only when we provably share its
// mount namespace (same ns/mnt inode): fuseguard may run in a container
// (a DaemonSet with hostPID), where /proc/self/mountinfo is the
// container's, and a host mount missing from it would make a shared
// connection look owned. Where pid 1's table is hidden (hidepid), its
// namespace link is too, so in practice the fallback serves only a /proc
// that refuses mountinfo while it still shows the link.
func HostMounts(p proc.FS) ([]Mount, error) {
	infos, err := p.MountInfo(1)
	if err == nil {
		return FUSEMounts(infos), nil
	}
	self := os.Getpid()
	// The links are the host's init's and our own: no container task's
	// lock is involved, but the read is bounded like every other.
	ctx, cancel := context.WithTimeout(context.Background(), proc.DefaultReadTimeout)
	defer cancel()
	hostNS, nsErr := p.NamespaceInode(ctx, 1, "mnt")
	selfNS, selfNSErr := p.NamespaceInode(ctx, self, "mnt")
	if nsErr != nil || selfNSErr != nil || selfNS != hostNS {
		return nil, fmt.Errorf("host mounts: pid 1: %w", err)
	}
	infos, selfErr := p.MountInfo(self)
	if selfErr != nil {
		return nil, fmt.Errorf("host mounts: pid 1: %w; self: %w", err, selfErr)
	}
	return FUSEMounts(infos), nil
}

// Observe reads pid's FUSE mounts and classifies them against the host's.
// An unreadable host table is not an error: the connections come back
// with unknown ownership (OwnershipUnknown says why), none owned. The
// connections carry no generation (see Control.Observe).
func Observe(p proc.FS, pid int) ([]Connection, error) {
	return Control{}.observe(p, pid, nil)
}

// Observe is the package's Observe with each connection's generation
// proven through c (see Stamp); unproven ones keep 0.
func (c Control) Observe(p proc.FS, pid int) ([]Connection, error) {
	before, _ := c.Generations()
	return c.observe(p, pid, before)
}

func (c Control) observe(p proc.FS, pid int, before map[ConnID]Generation) ([]Connection, error) {
	infos, err := p.MountInfo(pid)
	if err != nil {
		return nil, fmt.Errorf("observe pid %d: %w", pid, err)
	}
	return c.Stamp(before, ReadHostTable(p).Classify(FUSEMounts(infos))), nil
}
