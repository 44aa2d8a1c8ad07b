package killer

import (
	"context"
	"fmt"
	"os"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// dedicationCheck decides which shared connections of one diagnosis are
// dedicated to the container's pod (see Policy.DedicatedPrefixes).
type dedicationCheck struct {
	prefixes []string
	rec      *record.Record
	host     fuseconn.HostTable
	records  *record.Store
	rd       *taskReader
}

// dedicate sets Dedicated and Dedication on each live, proven, shared
// connection of conns when the policy has the dedicated class on. Anything
// it cannot establish in time (a mount table, a namespace link) leaves
// the connection shared, with why: the class only ever widens what is
// aborted on proof.
func (p Policy) dedicate(rd *taskReader, rec *record.Record, host fuseconn.HostTable, conns []ConnState) {
	if len(p.DedicatedPrefixes) == 0 {
		return
	}
	chk := dedicationCheck{prefixes: p.DedicatedPrefixes, rec: rec, host: host, records: p.Records, rd: rd}
	var candidates []int
	volumeDirs := map[int]string{}
	for i, c := range conns {
		if !c.Live || !c.Proven || c.Owned || c.OwnershipUnknown != "" {
			continue
		}
		dir, why := chk.hostMounts(c.Connection)
		if why != "" {
			conns[i].Dedication = why
			continue
		}
		candidates = append(candidates, i)
		volumeDirs[i] = dir
	}
	if len(candidates) == 0 {
		return
	}
	keys := make(map[devKey]bool, len(candidates))
	for _, i := range candidates {
		keys[devKey{conns[i].Major, conns[i].Conn}] = true
	}
	users, incomplete := chk.otherUsers(keys)
	for _, i := range candidates {
		c := &conns[i]
		switch user, used := users[devKey{c.Major, c.Conn}]; {
		case used:
			c.Dedication = fmt.Sprintf("not dedicated to pod %s: used by another live container %s", rec.PodUID, user)
		case incomplete != "":
			c.Dedication = fmt.Sprintf("not dedicated to pod %s: %s", rec.PodUID, incomplete)
		default:
			c.Dedicated = true
			c.Dedication = fmt.Sprintf("dedicated to pod %s: mounted on the host only under %s, used by no other live container", rec.PodUID, volumeDirs[i])
		}
	}
}

// devKey is a connection's device number, as the host table has it.
type devKey struct {
	major int
	conn  fuseconn.ConnID
}

// hostMounts returns the pod's volume directory that holds c's host
// mounts (the first one's), or why c, a shared connection, cannot be
// dedicated by where the host has it mounted: every host mount must lie
// under the pod's volume directory.
func (chk dedicationCheck) hostMounts(c fuseconn.Connection) (dir, why string) {
	if chk.rec.PodUID == "" {
		return "", "not dedicated: the container's record names no pod (no valid pod UID annotation at start)"
	}
	for _, m := range chk.host.Mounts {
		if m.Major != c.Major || m.Conn != c.Conn {
			continue
		}
		d := fuseconn.PodVolumeDir(chk.prefixes, chk.rec.PodUID, m.MountPoint)
		if d == "" {
			return "", fmt.Sprintf("not dedicated to pod %s: mounted outside the pod's volume dir (host mount at %s)", chk.rec.PodUID, m.MountPoint)
		}
		if dir == "" {
			dir = d
		}
	}
	if dir == "" {
		// Shared means the host had it when it was classified; gone now.
		return "", fmt.Sprintf("not dedicated to pod %s: not in the host's mount table read now", chk.rec.PodUID)
	}
	return dir, ""
}

// otherUsers reads the mount table of every mount namespace on the node
// but the host's, the container's, fuseguard's own and those of the pod's
// other live containers, and names, per connection of keys, one that has
// it mounted outside the pod's volume directory. (A table that shows it
// only under that directory sees the host's mount through propagation,
// as a CSI node plugin with the kubelet directory mounted does: that is
// not a use by a container.) incomplete says why not every table could be
// read; then no connection may count as unused.
func (chk dedicationCheck) otherUsers(keys map[devKey]bool) (users map[devKey]string, incomplete string) {
	p, ctx := chk.rd.p, chk.rd.ctx
	users = map[devKey]string{}
	skip, byNS := chk.knownNamespaces()
	pids, err := p.PIDs()
	if err != nil {
		return users, "the other containers' mount tables could not be listed: " + err.Error()
	}
	seen := map[uint64]bool{}
	for _, pid := range pids {
		if ctx.Err() != nil {
			return users, "the other containers' mount tables could not all be read before the deadline"
		}
		ns, err := bounded(chk.rd, func(ctx context.Context) (uint64, error) { return p.NamespaceInode(ctx, pid, "mnt") })
		switch {
		case proc.Unanswered(err):
			return users, fmt.Sprintf("the mount namespace of pid %d could not be read in time", pid)
		case err != nil:
			continue // gone, a zombie or a kernel thread: no mount table to use it
		}
		if skip[ns] || seen[ns] {
			continue
		}
		infos, err := p.MountInfo(pid)
		if err != nil {
			// Gone while we looked; another task of the namespace, if
			// any, still shows the table.
			continue
		}
		seen[ns] = true
		for _, m := range fuseconn.FUSEMounts(infos) {
			k := devKey{m.Major, m.Conn}
			if !keys[k] || users[k] != "" {
				continue
			}
			if fuseconn.PodVolumeDir(chk.prefixes, chk.rec.PodUID, m.MountPoint) != "" {
				continue
			}
			if id, ok := byNS[ns]; ok {
				users[k] = id
			} else {
				users[k] = fmt.Sprintf("(pid %d, mount namespace %d, no record)", pid, ns)
			}
		}
	}
	return users, ""
}

// knownNamespaces returns the mount namespaces that are not another
// pod's containers — the host's, fuseguard's own, the container's and
// those of the pod's other live containers (by their records) — and the
// node's records by mount namespace, to name a user.
func (chk dedicationCheck) knownNamespaces() (skip map[uint64]bool, byNS map[uint64]string) {
	p := chk.rd.p
	skip, byNS = map[uint64]bool{}, map[uint64]string{}
	for _, pid := range []int{1, os.Getpid()} {
		if ns, err := bounded(chk.rd, func(ctx context.Context) (uint64, error) { return p.NamespaceInode(ctx, pid, "mnt") }); err == nil {
			skip[ns] = true
		}
	}
	if chk.rec.MntNS != 0 {
		skip[chk.rec.MntNS] = true
	}
	if chk.records == nil {
		return skip, byNS
	}
	recs, _ := chk.records.List()
	for _, r := range recs {
		if r.MntNS == 0 || r.ID == chk.rec.ID {
			continue
		}
		// A namespace inode is reused once freed: a record speaks for its
		// namespace only while its init is the one recorded.
		st, err := bounded(chk.rd, func(ctx context.Context) (proc.Stat, error) { return p.Stat(ctx, r.InitPID) })
		if err != nil || st.StartTime != r.InitStartTime {
			continue
		}
		byNS[r.MntNS] = r.ID
		if r.PodUID == chk.rec.PodUID {
			skip[r.MntNS] = true
		}
	}
	return skip, byNS
}
