package watch

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fuseguard/fuseguard/record"
)

// StateName is the file in the state directory where the running watcher
// publishes what only it knows (rescues in flight and backing off, records
// over the cap, unreadable mount tables) for `fuseguard status`. It is no
// record: it does not end in ".json".
const StateName = "watch.state"

// Rescue states of a container, in ContainerWatch.Rescue.
const (
	RescueQueued  = "queued"  // detected; waiting for a rescue slot
	RescueRunning = "running" // a rescue runs
	RescueOverdue = "overdue" // a rescue ran past its deadline: abandoned, still not returned
	RescueBackoff = "backoff" // the last rescue failed; the next waits until NextRescue
)

// WatcherState is what the running watcher publishes about itself.
type WatcherState struct {
	PID     int       `json:"pid"`
	Updated time.Time `json:"updated"`
	Tracked int       `json:"tracked"`
	// MaxTracked is the cap of tracked records; NotTracked counts the
	// records refused for it (tracked once room frees up).
	MaxTracked int `json:"max_tracked"`
	NotTracked int `json:"not_tracked"`
	// Rescues running within their deadline (at most MaxRescues),
	// abandoned past it, and waiting for a slot.
	RescuesRunning   int `json:"rescues_running"`
	RescuesAbandoned int `json:"rescues_abandoned"`
	RescuesQueued    int `json:"rescues_queued"`
	MaxRescues       int `json:"max_rescues"`
	// ExitEvents is how the watcher learns that an init began to exit:
	// ExitEventsTaskstats or ExitEventsPolling; ExitEventsError says why
	// not taskstats, ExitEventOverruns how often notifications were lost
	// (and every init checked).
	ExitEvents        string                    `json:"exit_events"`
	ExitEventsError   string                    `json:"exit_events_error,omitempty"`
	ExitEventOverruns int                       `json:"exit_event_overruns,omitempty"`
	Containers        map[string]ContainerWatch `json:"containers,omitempty"`
}

// ContainerWatch is the watcher's view of one container, published when it
// has something to say.
type ContainerWatch struct {
	NotTracked bool   `json:"not_tracked,omitempty"` // refused: MaxTracked reached
	Rescue     string `json:"rescue,omitempty"`      // RescueQueued, RescueRunning, RescueOverdue or RescueBackoff
	// Failures counts the rescues in a row that left init stuck; the next
	// comes Backoff after the last, at NextRescue.
	Failures   int           `json:"rescue_failures,omitempty"`
	LastError  string        `json:"last_error,omitempty"`
	Backoff    time.Duration `json:"backoff_ns,omitempty"`
	NextRescue time.Time     `json:"next_rescue,omitzero"`
	// MountTableError: the last read of the mount table failed (too big,
	// unreadable); the record keeps what it had.
	MountTableError string `json:"mount_table_error,omitempty"`
	// ConnectionsDropped: FUSE connections of the last read that did not
	// fit in the record (MaxConnections).
	ConnectionsDropped int `json:"connections_dropped,omitempty"`
}

// stateWriteInterval is the shortest time between two writes of the
// state: a burst of changes is one write.
const stateWriteInterval = 250 * time.Millisecond

// maxStateFile caps what ReadStatus reads of the state file.
const maxStateFile = 16 << 20

// stateWriter publishes the watcher's state when it changed, at most once
// per stateWriteInterval.
type stateWriter struct {
	store  record.Store
	dirty  bool
	next   time.Time
	failed bool // the last write failed (logged once)
}

func (s *stateWriter) changed() { s.dirty = true }

// due is when the next write may happen; far off when nothing changed.
func (s *stateWriter) due() time.Time {
	if !s.dirty {
		return time.Now().Add(time.Hour)
	}
	return s.next
}

func (s *stateWriter) maybeWrite(w *Watcher, now time.Time) {
	if !s.dirty || now.Before(s.next) {
		return
	}
	s.dirty = false
	s.next = now.Add(stateWriteInterval)
	b, err := json.Marshal(w.snapshot(now))
	if err == nil {
		err = s.store.WriteFile(StateName, append(b, '\n'))
	}
	if err != nil {
		if !s.failed {
			w.log.WithError(err).Warn("cannot publish the watcher's state: status shows less")
			w.failed("", err)
		}
		s.failed = true
		return
	}
	s.failed = false
}

// remove deletes the state file: what it says ends with the watcher.
func (s *stateWriter) remove(log logrus.FieldLogger) {
	err := os.Remove(filepath.Join(s.store.Dir, StateName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.WithError(err).Warn("cannot remove the watcher's state")
	}
}

// snapshot is the watcher's state now.
func (w *Watcher) snapshot(now time.Time) WatcherState {
	st := WatcherState{
		PID: os.Getpid(), Updated: now,
		Tracked: len(w.tracks), MaxTracked: w.o.MaxTracked,
		NotTracked:        len(w.refused) + w.overflow,
		RescuesRunning:    w.active,
		RescuesAbandoned:  len(w.running) - w.active,
		MaxRescues:        w.o.MaxRescues,
		ExitEvents:        w.exitSource,
		ExitEventOverruns: w.exitOverruns,
		Containers:        map[string]ContainerWatch{},
	}
	if w.exits == nil {
		st.ExitEventsError = w.exitErr
	}
	for id := range w.refused {
		st.Containers[id] = ContainerWatch{NotTracked: true}
	}
	for id, t := range w.tracks {
		c := ContainerWatch{
			Failures: t.failures, LastError: t.lastErr,
			MountTableError: t.mntErr, ConnectionsDropped: t.dropped,
		}
		switch {
		case t.queued:
			c.Rescue = RescueQueued
			st.RescuesQueued++
		case t.rescue != nil && t.rescue.abandoned:
			c.Rescue = RescueOverdue
		case t.rescue != nil:
			c.Rescue = RescueRunning
		case t.failures > 0:
			c.Rescue = RescueBackoff
			c.Backoff = backoff(w.o.RetryInterval, w.o.MaxRetryInterval, t.failures)
			c.NextRescue = t.nextRescue
		}
		if c != (ContainerWatch{}) {
			st.Containers[id] = c
		}
	}
	return st
}

// readWatcherState reads the state the watcher pid published in dir; nil
// when there is none, or when another process (a watcher since gone)
// wrote it.
func readWatcherState(dir string, pid int) (*WatcherState, error) {
	f, err := os.Open(filepath.Join(dir, StateName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st WatcherState
	if err := json.NewDecoder(io.LimitReader(f, maxStateFile)).Decode(&st); err != nil {
		return nil, err
	}
	if st.PID != pid {
		return nil, nil
	}
	return &st, nil
}
