package record

import (
	"context"
	"fmt"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
)

// NewRecord observes a live init: start time, namespaces, cgroup, FUSE
// connections.
func NewRecord(p proc.FS, id string, pid int, now time.Time) (*Record, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	st, err := p.Stat(context.Background(), pid)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	pidNS, err := p.NamespaceInode(context.Background(), pid, "pid")
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	mntNS, err := p.NamespaceInode(context.Background(), pid, "mnt")
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	cg, err := p.Cgroup(pid)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	conns, err := fuseconn.Control{}.Observe(p, pid)
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

// Merge adds connection instances not yet recorded (never forgets one) and
// reports how many were new or newly classified.
//
// A connection that left the container's mount table is kept: a task stuck
// in an exit-time flush may still wait on it. An id seen again as another
// instance (the container unmounted and the id was reused) is recorded
// again with its generation; an unproven sighting (Gen 0) of an id already
// recorded adds nothing.
func (r *Record) Merge(conns []fuseconn.Connection, now time.Time) int {
	added := 0
	for _, c := range conns {
		if i := r.indexRef(c.Ref()); i >= 0 {
			// Ownership unknown (the host table was unreadable) is settled
			// by a later reading of the same mount of the same instance;
			// never the other way.
			if have := &r.Connections[i]; have.OwnershipUnknown != "" && c.OwnershipUnknown == "" && have.MountID == c.MountID && have.Gen == c.Gen {
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

// Has reports whether ref is recorded; an unproven ref matches any
// recording of its id.
func (r *Record) Has(ref fuseconn.ConnRef) bool { return r.indexRef(ref) >= 0 }

func (r *Record) indexRef(ref fuseconn.ConnRef) int {
	for i, c := range r.Connections {
		if c.Conn == ref.ID && (c.Gen == ref.Gen || ref.Gen == 0) {
			return i
		}
	}
	return -1
}

// Lookup returns the recorded connection with this id.
func (r *Record) Lookup(id fuseconn.ConnID) (RecordedConnection, bool) {
	if i := r.indexRef(fuseconn.ConnRef{ID: id}); i >= 0 {
		return r.Connections[i], true
	}
	return RecordedConnection{}, false
}
