package killer

import (
	"context"
	"fmt"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// connSet is the container's FUSE connections as a diagnosis learns them:
// the record's, and those mounted in a live mount table of the container
// (a stuck task's — it keeps its mount namespace until it gets past
// exit_files — or init's, held open since before the signal).
//
// Connection ids and mount ids are both reused by the kernel at once, so
// the record alone proves nothing about the connection that has an id now:
// a connection is the container's only when a live table of the container
// shows it while its generation stayed the same (before and after all the
// tables were read; see fuseconn.Control.Stamp).
type connSet struct {
	recorded []fuseconn.Connection
	live     map[fuseconn.ConnID]liveConn
	order    []fuseconn.ConnID // recorded ids first, then those learned
	host     fuseconn.HostTable
	before   map[fuseconn.ConnID]fuseconn.Generation
}

// liveConn is a connection seen in a live mount table of the container.
type liveConn struct {
	fuseconn.Connection
	where string // whose table showed it
}

// newConnSet starts a diagnosis's view; before is the fusectl generations
// read before any mount table (nil: fusectl unreadable, nothing provable).
func newConnSet(rec *record.Record, host fuseconn.HostTable, before map[fuseconn.ConnID]fuseconn.Generation) *connSet {
	s := &connSet{live: map[fuseconn.ConnID]liveConn{}, host: host, before: before}
	for _, rc := range rec.Connections {
		s.recorded = append(s.recorded, rc.Connection)
		s.note(rc.Conn)
	}
	return s
}

func (s *connSet) note(id fuseconn.ConnID) {
	for _, have := range s.order {
		if have == id {
			return
		}
	}
	s.order = append(s.order, id)
}

// learnTable adds the FUSE mounts of one live mount table of the container.
func (s *connSet) learnTable(mounts []fuseconn.Mount, where string) {
	for _, c := range s.host.Classify(mounts) {
		if _, ok := s.live[c.Conn]; ok {
			continue
		}
		s.live[c.Conn] = liveConn{Connection: c, where: where}
		s.note(c.Conn)
	}
}

// learn reads tid's own mount table and adds its FUSE mounts; it returns
// them for resolving tid's fds (nil when unreadable).
func (s *connSet) learn(p proc.FS, tid int) []fuseconn.Mount {
	infos, err := p.MountInfo(tid)
	if err != nil {
		return nil
	}
	mounts := fuseconn.FUSEMounts(infos)
	s.learnTable(mounts, fmt.Sprintf("the mount table of stuck task %d", tid))
	return mounts
}

// waitedOn names the connection tid is blocked on, when the blocked call
// takes an fd: /proc/TID/syscall gives the fd, its fdinfo the mount id, and
// tid's own current mount table (own) the connection. Mount ids are reused
// like connection ids, so no other table (and no record) may resolve it.
// No FUSE path is ever touched.
func waitedOn(ctx context.Context, p proc.FS, tid int, own []fuseconn.Mount) (fuseconn.ConnID, string, bool) {
	sc, err := p.Syscall(ctx, tid)
	if err != nil {
		return 0, "", false
	}
	fd, ok := sc.FD()
	if !ok {
		return 0, "", false
	}
	fi, err := p.FDInfo(tid, fd)
	if err != nil {
		return 0, "", false
	}
	for _, m := range own {
		if m.MountID == fi.MntID {
			return m.Conn, fmt.Sprintf("fd %d of its blocked syscall %d → mnt_id %d", fd, sc.Number, fi.MntID), true
		}
	}
	return 0, "", false
}

// states turns what was learned into the connections' states; after is the
// fusectl generations read after every table. A connection is Proven when
// a live table showed it and its generation was the same before and after;
// any other is kept out of the plan with the reason in Unproven.
func (s *connSet) states(after map[fuseconn.ConnID]fuseconn.Generation, waiting func(fuseconn.ConnRef) (int, error)) []ConnState {
	var out []ConnState
	for _, id := range s.order {
		cur := after[id]
		cs := ConnState{Live: cur != 0}
		lc, mounted := s.live[id]
		rec, recorded := s.recordedAs(id, cur)
		switch {
		case mounted && cur != 0 && s.before[id] == cur:
			cs.Connection, cs.Proven, cs.MountedIn = lc.Connection, true, lc.where
			if recorded && rec.Gen == cur {
				// The record saw this very instance while the container ran:
				// its classification (against the host table then) stands.
				cs.Connection = rec
			}
			cs.Gen = cur
		case recorded:
			cs.Connection = rec
			cs.Unproven = unprovenReason(id, rec.Gen, cur, mounted)
		default:
			cs.Connection = lc.Connection
			cs.Unproven = fmt.Sprintf("connection %s changed while the container's mount tables were read: not proven the container's", id)
		}
		cs.RecordedGen = rec.Gen
		if cs.Live {
			// Shown for every live id, proven or not: an unproven count is
			// the current holder's, and is never acted on.
			if w, err := waiting(fuseconn.ConnRef{ID: id, Gen: cur}); err != nil {
				cs.Err = err.Error()
			} else {
				cs.Waiting = w
			}
		}
		out = append(out, cs)
	}
	return out
}

// recordedAs returns the record's entry for id: the one of generation gen
// when there is one, else the last recorded.
func (s *connSet) recordedAs(id fuseconn.ConnID, gen fuseconn.Generation) (fuseconn.Connection, bool) {
	var found fuseconn.Connection
	ok := false
	for _, c := range s.recorded {
		if c.Conn != id {
			continue
		}
		if c.Gen == gen && gen != 0 {
			return c, true
		}
		found, ok = c, true
	}
	return found, ok
}

// unprovenReason says why a recorded connection is not the container's to
// abort.
func unprovenReason(id fuseconn.ConnID, recorded, cur fuseconn.Generation, mounted bool) string {
	switch {
	case cur == 0:
		return fmt.Sprintf("connection %s is gone", id)
	case recorded != 0 && recorded != cur:
		return fmt.Sprintf("connection %s was replaced since it was recorded (generation %d → %d): not the container's", id, recorded, cur)
	case mounted:
		return fmt.Sprintf("connection %s changed while the container's mount tables were read: not proven the container's", id)
	case recorded == 0:
		return fmt.Sprintf("connection %s was recorded without a generation and is mounted in none of the container's live mount tables: unproven, not aborted on the record's word", id)
	default:
		return fmt.Sprintf("connection %s (generation %d) is mounted in none of the container's live mount tables: not aborted on the record's word alone", id, cur)
	}
}
