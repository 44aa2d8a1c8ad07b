package watch

import (
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/obs"
	"github.com/fuseguard/fuseguard/proc"
)

// ErrLocked is returned (wrapped, naming the holder) when another watcher
// holds the state directory's lock.
var ErrLocked = errors.New("another fuseguard watcher is running")

// Defaults of Options.
const (
	DefaultGrace          = 2 * time.Second
	DefaultCheckInterval  = 500 * time.Millisecond
	DefaultRescanInterval = 30 * time.Second
	DefaultRetryInterval  = 10 * time.Second
	DefaultShutdown       = 3 * time.Second
	// rescueVerify is the Kill's verify wait: the grace already was one.
	rescueVerify = 10 * time.Millisecond
)

// Options tune a Watcher.
type Options struct {
	// StateDir holds the records and the lock; "" means $FUSEGUARD_STATE_DIR
	// or /run/fuseguard.
	StateDir string
	// Grace is how long init may be exiting (PF_EXITING) before the exit
	// counts as stuck.
	Grace time.Duration
	// CheckInterval is how often each tracked init's PF_EXITING is read.
	CheckInterval time.Duration
	// RescanInterval is the safety rescan of the state directory and of
	// every tracked mount table, in case an event was missed.
	RescanInterval time.Duration
	// RetryInterval separates two rescues of a container still stuck.
	RetryInterval time.Duration
	// RecoverTimeout bounds the wait for the exit after an abort.
	RecoverTimeout time.Duration
	// ShutdownTimeout bounds how long Run waits for rescues in flight once
	// its context ends.
	ShutdownTimeout time.Duration
	// Policy decides what a rescue may abort (killer's default: owned
	// connections only).
	Policy  killer.Policy
	Proc    proc.FS           // zero value: /proc
	Control fuseguard.Control // zero value: /sys/fs/fuse/connections
	Log     logrus.FieldLogger
	Tracer  trace.Tracer
	// OnEvent, if set, is called from the event loop for everything the
	// watcher does; it must return quickly.
	OnEvent func(Event)
}

func (o Options) withDefaults() Options {
	if o.StateDir == "" {
		o.StateDir = fuseguard.NewStore("").Dir
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.RescanInterval <= 0 {
		o.RescanInterval = DefaultRescanInterval
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.RecoverTimeout <= 0 {
		o.RecoverTimeout = killer.DefaultRecoverTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdown
	}
	o.Log = obs.Logger(o.Log)
	o.Tracer = obs.Tracer(o.Tracer)
	return o
}

// EventKind names what the watcher did.
type EventKind string

const (
	EventReady     EventKind = "ready"     // the start-up scan is done
	EventTracked   EventKind = "tracked"   // a record is being watched
	EventStale     EventKind = "stale"     // a record whose init is gone or reused was removed
	EventRefreshed EventKind = "refreshed" // new connections were added to a record
	EventExiting   EventKind = "exiting"   // init started exiting
	EventDetected  EventKind = "detected"  // init exiting for longer than the grace: rescue started
	EventRescued   EventKind = "rescued"   // a rescue finished (see Report and Err)
	EventForgotten EventKind = "forgotten" // init exited or the record was removed
)

// Event is one thing the watcher did, for tests and embedding programs.
type Event struct {
	Kind   EventKind
	ID     string
	PID    int
	Conns  []fuseguard.ConnID // EventTracked: those recorded; EventRefreshed: those added
	Report *killer.Report     // EventRescued
	Err    error
	Time   time.Time
}
