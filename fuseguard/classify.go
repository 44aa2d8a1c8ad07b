package fuseguard

import (
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
// (first mount wins), owned when host has no mount with the same id.
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

// HostMounts reads the host's FUSE mounts: /proc/1/mountinfo, falling back to
// /proc/self/mountinfo when pid 1's is unreadable.
func HostMounts(p proc.FS) ([]Mount, error) {
	infos, err := p.MountInfo(1)
	if err != nil {
		// Without access to pid 1 (e.g. hidepid) our own table is the
		// best view of the host we have: fuseguard runs on the host.
		var selfErr error
		infos, selfErr = p.MountInfo(os.Getpid())
		if selfErr != nil {
			return nil, fmt.Errorf("host mounts: pid 1: %w; self: %w", err, selfErr)
		}
	}
	return FUSEMounts(infos), nil
}

// Observe reads pid's FUSE mounts and classifies them against the host's.
// The connections carry no generation (see Control.Observe).
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
	host, err := HostMounts(p)
	if err != nil {
		return nil, fmt.Errorf("observe pid %d: %w", pid, err)
	}
	return c.Stamp(before, Classify(FUSEMounts(infos), host)), nil
}
