package watch

import (
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/obs"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// ErrLocked is returned (wrapped, naming the holder) when another watcher
// holds the state directory's lock.
var ErrLocked = errors.New("another fuseguard watcher is running")

// Defaults of Options.
const (
	DefaultGrace          = 2 * time.Second
	DefaultCheckInterval  = 500 * time.Millisecond
	DefaultRescanInterval = 30 * time.Second
	// DefaultSafetyCheckInterval: with exit notifications, every init's
	// PF_EXITING is still read this often, in case one was lost.
	DefaultSafetyCheckInterval = 30 * time.Second
	DefaultRetryInterval       = 10 * time.Second
	DefaultShutdown            = 3 * time.Second
	// DefaultMaxRetryInterval caps the backoff between two rescues of a
	// container that stays stuck.
	DefaultMaxRetryInterval = 5 * time.Minute
	// DefaultMaxRescues is how many rescues may run at once, over all
	// containers.
	DefaultMaxRescues = 4
	// DefaultMountReadInterval is the shortest time between two reads of
	// one container's mount table: a mount-table change storm costs at
	// most one read per interval, and a new mount is still recorded well
	// within a second.
	DefaultMountReadInterval = 200 * time.Millisecond
	// DefaultMaxTracked caps the records tracked at once.
	DefaultMaxTracked = 8192
	// DefaultMaxConnections caps the connections the watcher adds to one
	// record.
	DefaultMaxConnections = 256
	// DefaultMaxMountInfo caps the bytes of one mount table read (about
	// 30000 mounts).
	DefaultMaxMountInfo = 4 << 20
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
	// CheckInterval is how often each tracked init's PF_EXITING is read
	// when the kernel's exit events are not used (ExitEvents "off", or
	// unavailable).
	CheckInterval time.Duration
	// ExitEvents chooses how the watcher learns that an init began to
	// exit: ExitEventsAuto (""), the kernel's taskstats exit notifications
	// when it can have them, else polling every CheckInterval;
	// ExitEventsOff, polling.
	ExitEvents string
	// SafetyCheckInterval is how often every tracked init's PF_EXITING is
	// read while exit events are used: the safety net for an event lost.
	SafetyCheckInterval time.Duration
	// RescanInterval is the safety rescan of the state directory, in case
	// an event was missed, and of the mount tables whose last read failed
	// or left a connection's ownership unknown.
	RescanInterval time.Duration
	// RetryInterval separates the first two rescues of a container still
	// stuck; it doubles after each failed rescue, up to MaxRetryInterval.
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// RecoverTimeout bounds the wait for the exit after an abort.
	RecoverTimeout time.Duration
	// RescueTimeout is the deadline of one rescue (default: the killer's
	// bound, RescueBound). A rescue still running past it (a /proc read
	// that ignores its context) is abandoned: its slot goes to the next
	// container and the container is retried once the rescue returns.
	RescueTimeout time.Duration
	// MaxRescues caps the rescues running at once; a stuck exit detected
	// while all slots are busy waits for one.
	MaxRescues int
	// MountReadInterval is the shortest time between two reads of one
	// container's mount table (coalescing mount-table change storms).
	MountReadInterval time.Duration
	// MaxTracked caps the records tracked at once; records past it are
	// logged, counted in the status, and tracked once room frees up.
	MaxTracked int
	// MaxConnections caps the connections the watcher adds to one record.
	MaxConnections int
	// MaxMountInfo caps the bytes of one mount table read; a larger table
	// is not read (the record keeps what it has) and shows in the status.
	MaxMountInfo int
	// ShutdownTimeout bounds how long Run waits for rescues in flight once
	// its context ends.
	ShutdownTimeout time.Duration
	// Policy decides what a rescue may abort (killer's default: owned
	// connections only).
	Policy  killer.Policy
	Proc    proc.FS          // zero value: /proc
	Control fuseconn.Control // zero value: /sys/fs/fuse/connections
	Log     logrus.FieldLogger
	Tracer  trace.Tracer
	// OnEvent, if set, is called from the event loop for everything the
	// watcher does; it must return quickly.
	OnEvent func(Event)
}

func (o Options) withDefaults() Options {
	if o.StateDir == "" {
		o.StateDir = record.NewStore("").Dir
	}
	orDefault(&o.Grace, DefaultGrace)
	orDefault(&o.CheckInterval, DefaultCheckInterval)
	orDefault(&o.RescanInterval, DefaultRescanInterval)
	orDefault(&o.SafetyCheckInterval, DefaultSafetyCheckInterval)
	if o.ExitEvents == "" {
		o.ExitEvents = ExitEventsAuto
	}
	orDefault(&o.RetryInterval, DefaultRetryInterval)
	orDefault(&o.MaxRetryInterval, DefaultMaxRetryInterval)
	o.MaxRetryInterval = max(o.MaxRetryInterval, o.RetryInterval)
	orDefault(&o.RecoverTimeout, killer.DefaultRecoverTimeout)
	orDefault(&o.RescueTimeout, RescueBound(o.RecoverTimeout))
	orDefault(&o.MaxRescues, DefaultMaxRescues)
	orDefault(&o.MountReadInterval, DefaultMountReadInterval)
	orDefault(&o.MaxTracked, DefaultMaxTracked)
	orDefault(&o.MaxConnections, DefaultMaxConnections)
	orDefault(&o.MaxMountInfo, DefaultMaxMountInfo)
	orDefault(&o.ShutdownTimeout, DefaultShutdown)
	o.Log = obs.Logger(o.Log)
	o.Tracer = obs.Tracer(o.Tracer)
	return o
}

// orDefault sets a zero or negative *v to def.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// RescueBound is the default deadline of one rescue: the bound killer.Kill
// enforces for the rescue's verify-only kill (its short verify, the
// diagnosis, the aborts and the wait for the exit, within recover).
func RescueBound(recover time.Duration) time.Duration {
	return rescueKillOptions(recover).Bound()
}

// rescueKillOptions are the timeouts of a rescue's kill: the grace already
// was the verify, so the kill's own is short.
func rescueKillOptions(recover time.Duration) killer.Options {
	return killer.Options{VerifyOnly: true, VerifyTimeout: rescueVerify, RecoverTimeout: recover}
}

// backoff is the wait before the next rescue of a container whose last
// failures rescues failed: base, doubled per further failure, at most
// limit.
func backoff(base, limit time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// EventKind names what the watcher did.
type EventKind string

const (
	EventReady     EventKind = "ready"      // the start-up scan is done
	EventTracked   EventKind = "tracked"    // a record is being watched
	EventStale     EventKind = "stale"      // a record whose init is gone or reused was removed
	EventRefreshed EventKind = "refreshed"  // new connections were added to a record
	EventMountRead EventKind = "mount-read" // a container's mount table was read (at most once per MountReadInterval)
	EventExiting   EventKind = "exiting"    // init started exiting
	// EventExitSource: at start, how exits are learnt; Err is nil with the
	// kernel's notifications, else why the watcher polls.
	EventExitSource EventKind = "exit-source"
	EventDetected   EventKind = "detected"  // init exiting for longer than the grace: rescue started or queued
	EventRefused    EventKind = "refused"   // a record not tracked: MaxTracked reached
	EventAbandoned  EventKind = "abandoned" // a rescue ran past its deadline: its slot was freed
	EventRescued    EventKind = "rescued"   // a rescue finished (see Report and Err)
	EventForgotten  EventKind = "forgotten" // init exited or the record was removed
	// EventError: something failed that the watcher goes on without (a
	// record unreadable or not saved, a mount table or the state directory
	// not read, …); Err says what. It is emitted where the error is logged.
	EventError EventKind = "error"
)

// Event is one thing the watcher did, for tests and embedding programs.
type Event struct {
	Kind   EventKind
	ID     string
	PID    int
	Conns  []fuseconn.ConnID // EventTracked: those recorded; EventRefreshed: those added
	Report *killer.Report    // EventRescued
	Err    error
	Time   time.Time
}
