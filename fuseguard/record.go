package fuseguard

import (
	"fmt"
	"time"

	"github.com/fuseguard/fuseguard/proc"
)

// NewRecord observes a live init: start time, namespaces, cgroup, FUSE
// connections.
func NewRecord(p proc.FS, id string, pid int, now time.Time) (*Record, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	st, err := p.Stat(pid)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	pidNS, err := p.NamespaceInode(pid, "pid")
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	mntNS, err := p.NamespaceInode(pid, "mnt")
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	cg, err := p.Cgroup(pid)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	conns, err := Observe(p, pid)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	r := &Record{
		Version:       RecordVersion,
		ID:            id,
		InitPID:       pid,
		InitStartTime: st.StartTime,
		PidNS:         pidNS,
		MntNS:         mntNS,
		Cgroup:        cg,
		Connections:   []RecordedConnection{},
		Created:       now,
		Updated:       now,
	}
	r.Merge(conns, now)
	r.Updated = now
	return r, nil
}

// Merge adds connections not yet recorded (never forgets one) and reports
// how many were new or newly classified.
//
// A connection that left the container's mount table is kept: a task stuck
// in an exit-time flush may still wait on it.
func (r *Record) Merge(conns []Connection, now time.Time) int {
	added := 0
	for _, c := range conns {
		if i := r.index(c.Conn); i >= 0 {
			// Ownership unknown (the host table was unreadable) is settled
			// by a later reading of the same mount; never the other way.
			if have := &r.Connections[i]; have.OwnershipUnknown != "" && c.OwnershipUnknown == "" && have.MountID == c.MountID {
				have.Owned, have.OwnershipUnknown = c.Owned, ""
				added++
			}
			continue
		}
		r.Connections = append(r.Connections, RecordedConnection{Connection: c, FirstSeen: now})
		added++
	}
	if added > 0 {
		r.Updated = now
	}
	return added
}

// Lookup returns the recorded connection with this id.
func (r *Record) Lookup(id ConnID) (RecordedConnection, bool) {
	if i := r.index(id); i >= 0 {
		return r.Connections[i], true
	}
	return RecordedConnection{}, false
}

func (r *Record) index(id ConnID) int {
	for i, c := range r.Connections {
		if c.Conn == id {
			return i
		}
	}
	return -1
}
