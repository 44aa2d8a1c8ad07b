package watch

import (
	"context"
	"errors"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// Liveness of a record's init.
const (
	InitRunning = "running"
	InitExiting = "exiting" // PF_EXITING: dying, possibly stuck
	InitGone    = "gone"
	InitReused  = "reused" // the pid is another process now
	// InitUnreadable: its stat did not answer in time (an init asleep
	// inside execve holds the lock the read needs): it exists, its state
	// is unknown.
	InitUnreadable = "unreadable"
)

// statusReadTimeout bounds the read of one init's stat by status: a
// blocked read costs the listing this much, not the proc package's
// default second per container.
const statusReadTimeout = 200 * time.Millisecond

// Status is what `fuseguard status` shows.
type Status struct {
	StateDir string `json:"state_dir"`
	// WatcherPID is the watcher holding the lock, 0 when none runs, -1
	// when one does but its pid is unknown.
	WatcherPID int `json:"watcher_pid"`
	// Watcher is what the running watcher published (StateName); nil when
	// none runs or it published nothing yet.
	Watcher    *WatcherState `json:"watcher,omitempty"`
	Containers []Tracked     `json:"containers"`
	Errors     []string      `json:"errors,omitempty"`
}

// Tracked is one record and the liveness of what it names.
type Tracked struct {
	ID            string       `json:"id"`
	InitPID       int          `json:"init_pid"`
	InitStartTime uint64       `json:"init_start_time"`
	Init          string       `json:"init"` // InitRunning, InitExiting, InitGone, InitReused or InitUnreadable
	InitState     string       `json:"init_state,omitempty"`
	Created       time.Time    `json:"created"`
	Updated       time.Time    `json:"updated"`
	Connections   []ConnStatus `json:"connections"`
	// Watch is the running watcher's view (rescue backoff, caps), when it
	// has something to say about this container.
	Watch *ContainerWatch `json:"watch,omitempty"`
}

// ConnStatus is a recorded connection and its state in fusectl now.
type ConnStatus struct {
	record.RecordedConnection
	Live    bool   `json:"live"`            // still in fusectl (ids are reused: a live id may be another mount's once the container's is gone)
	Waiting int    `json:"waiting"`         // requests waiting; 0 unless Live (the convention of killer.ConnState)
	Err     string `json:"error,omitempty"` //
}

// ReadStatus reads every record of store and the state of its init and
// connections, each init's stat within statusReadTimeout and ctx. It never
// touches a FUSE mount.
func ReadStatus(ctx context.Context, p proc.FS, store record.Store, ctl fuseconn.Control) Status {
	s := Status{StateDir: store.Dir, Containers: []Tracked{}}
	if pid, err := Holder(store.Dir); err != nil {
		s.Errors = append(s.Errors, err.Error())
	} else {
		s.WatcherPID = pid
	}
	if s.WatcherPID > 0 {
		ws, err := readWatcherState(store.Dir, s.WatcherPID)
		if err != nil {
			s.Errors = append(s.Errors, "watcher state: "+err.Error())
		}
		s.Watcher = ws
	}
	recs, err := store.List()
	if err != nil {
		s.Errors = append(s.Errors, err.Error())
	}
	fusectl := true
	if err := ctl.Ensure(); err != nil {
		fusectl = false
		s.Errors = append(s.Errors, err.Error())
	}
	for _, r := range recs {
		tr := Tracked{
			ID: r.ID, InitPID: r.InitPID, InitStartTime: r.InitStartTime,
			Created: r.Created, Updated: r.Updated, Connections: []ConnStatus{},
		}
		rctx, cancel := context.WithTimeout(ctx, statusReadTimeout)
		st, err := p.Stat(rctx, r.InitPID)
		cancel()
		switch {
		case errors.Is(err, proc.ErrNoProcess):
			tr.Init = InitGone
		case proc.Unanswered(err):
			tr.Init = InitUnreadable
			s.Errors = append(s.Errors, err.Error())
		case err != nil:
			tr.Init = InitGone
			s.Errors = append(s.Errors, err.Error())
		case st.StartTime != r.InitStartTime:
			tr.Init = InitReused
		case st.Exiting():
			tr.Init, tr.InitState = InitExiting, st.State
		default:
			tr.Init, tr.InitState = InitRunning, st.State
		}
		for _, c := range r.Connections {
			cs := ConnStatus{RecordedConnection: c}
			if fusectl {
				if n, err := ctl.Waiting(c.Conn); err == nil {
					cs.Live, cs.Waiting = true, n
				} else if !errors.Is(err, fuseconn.ErrNoSuchConnection) {
					cs.Err = err.Error()
				}
			}
			tr.Connections = append(tr.Connections, cs)
		}
		if s.Watcher != nil {
			if cw, ok := s.Watcher.Containers[r.ID]; ok {
				tr.Watch = &cw
			}
		}
		s.Containers = append(s.Containers, tr)
	}
	return s
}
