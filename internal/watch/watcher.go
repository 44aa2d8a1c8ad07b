package watch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/record"
)

// Watcher is the node watcher. It holds the state directory's lock from
// New until Run returns (or Close).
type Watcher struct {
	o     Options
	store record.Store
	log   logrus.FieldLogger
	lock  *Lock
	dir   *dirWatch
	wake  int // eventfd: shutdown and rescue results

	tracks  map[string]*tracked
	exiting map[*tracked]struct{} // tracks whose init is exiting: the loop's deadlines are theirs
	byPID   map[int]*tracked      // tracks by init pid, for the exit notifications
	poll    *pollSet
	mntBuf  []byte // reused by every mountinfo read
	inoBuf  []byte
	rescues sync.WaitGroup

	cooling   map[*tracked]struct{}   // mount tables not read again before their next read slot
	running   map[*rescueRun]struct{} // rescues whose goroutine has not returned
	active    int                     // rescues in running not yet abandoned: at most MaxRescues
	queue     []*tracked              // stuck exits waiting for a rescue slot, oldest first
	refused   map[string]struct{}     // records not tracked: MaxTracked reached (at most maxRefusedIDs)
	overflow  int                     // records refused beyond maxRefusedIDs since the last rescan
	roomFreed bool                    // a record was forgotten while some were refused
	state     stateWriter

	// The exit event source: exits is nil while polling. exitSource and
	// exitErr (why not taskstats) are published in the state.
	exits        *exitEvents
	exitSource   string
	exitErr      string
	exitOverruns int       // ENOBUFS: notifications lost, every init checked
	exitsNext    time.Time // the exit socket is left out of poll until then
	// After lost notifications every init is checked, at most once per
	// CheckInterval: a container exiting tasks in a flood costs at most
	// what polling would.
	lostCheckDue  time.Time // zero when none is due
	lostCheckNext time.Time // the earliest time of the next one

	mu      sync.Mutex     // guards results and wake
	results []rescueResult // posted by rescues, taken by the loop
}

// minPoll is the shortest poll timeout of the loop.
const minPoll = 5 * time.Millisecond

// minWakeGap is the shortest time between two wake-ups of the loop: a
// container changing its mount table in a tight loop, whose descriptor
// stays in the poll set while it cools (see cool), wakes the loop at most
// this often, whatever its rate (about 0.3 % of a core for a storm of
// ~900 changes a second, BenchmarkWatcherChurn). Every event then waits at
// most this long: well within the second a stuck exit's detection may
// take past the grace, and within the second a new mount is recorded in.
const minWakeGap = 100 * time.Millisecond

// mntBufKeep is the mountinfo buffer kept between reads; a larger one,
// grown for a large table, is dropped after the read.
const mntBufKeep = 64 << 10

// exitDrainInterval is the shortest time between two reads of the exit
// notifications: the exits of a busy host wake the loop at most this
// often, each wake-up reading all that came meanwhile. An exit is seen at
// most this late, well within the second the detection may take past the
// grace.
const exitDrainInterval = 250 * time.Millisecond

// New takes the lock in the state directory (ErrLocked if another watcher
// holds it) and starts watching the directory. Records are read by Run.
func New(opts Options) (*Watcher, error) {
	o := opts.withDefaults()
	lock, err := AcquireLock(o.StateDir)
	if err != nil {
		return nil, err
	}
	dw, err := newDirWatch(o.StateDir)
	if err != nil {
		lock.Release()
		return nil, err
	}
	w := &Watcher{
		o:       o,
		store:   record.Store{Dir: o.StateDir},
		log:     o.Log.WithField("state_dir", o.StateDir),
		lock:    lock,
		dir:     dw,
		wake:    -1,
		tracks:  map[string]*tracked{},
		byPID:   map[int]*tracked{},
		exiting: map[*tracked]struct{}{},
		cooling: map[*tracked]struct{}{},
		running: map[*rescueRun]struct{}{},
		refused: map[string]struct{}{},
		state:   stateWriter{store: record.Store{Dir: o.StateDir}},
		mntBuf:  make([]byte, 0, mntBufKeep),
		inoBuf:  make([]byte, 64<<10),
	}
	if err := w.open(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// open creates the eventfd, the poll set and the exit event source.
func (w *Watcher) open() error {
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	w.wake = wake
	if w.poll, err = newPollSet(); err != nil {
		return err
	}
	if err := w.poll.add(wake, unix.EPOLLIN, pollRef{kind: pollWake}); err != nil {
		return err
	}
	if err := w.poll.add(w.dir.fd, unix.EPOLLIN, pollRef{kind: pollDir}); err != nil {
		return err
	}
	w.exitSource = ExitEventsPolling
	switch w.o.ExitEvents {
	case ExitEventsOff:
		w.exitErr = "off by configuration"
		return nil
	case ExitEventsAuto:
	default:
		return fmt.Errorf("exit events %q: want %q or %q", w.o.ExitEvents, ExitEventsAuto, ExitEventsOff)
	}
	e, err := openExitEvents()
	if err != nil {
		w.exitErr = err.Error()
		return nil
	}
	if err := w.poll.add(e.fd, unix.EPOLLIN, pollRef{kind: pollExits}); err != nil {
		e.close()
		return err
	}
	w.exits, w.exitSource = e, ExitEventsTaskstats
	return nil
}

// Close releases what New took; Run calls it on return.
func (w *Watcher) Close() error {
	for id, t := range w.tracks {
		t.close()
		delete(w.tracks, id)
	}
	if w.exits != nil {
		w.exits.close()
		w.exits = nil
	}
	if w.poll != nil {
		w.poll.close()
		w.poll = nil
	}
	if w.dir != nil {
		w.dir.close()
		w.dir = nil
	}
	w.mu.Lock()
	if w.wake >= 0 {
		unix.Close(w.wake)
		w.wake = -1
	}
	w.mu.Unlock()
	return w.lock.Release()
}

// Run watches until ctx ends, then waits for rescues in flight (at most
// ShutdownTimeout, then cancels them) and releases everything.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.Close()
	rescueCtx, cancelRescues := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRescues()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			w.signal()
		case <-stop:
		}
	}()

	if err := w.o.Control.Ensure(); err != nil {
		w.log.WithError(err).Warn("fusectl unavailable: rescues cannot abort connections")
		w.failed("", err)
	}
	log := w.log.WithFields(logrus.Fields{"grace": w.o.Grace, "exit_events": w.exitSource})
	if w.exits != nil {
		log.WithField("safety_check_interval", w.o.SafetyCheckInterval).Info("watcher started: the kernel's taskstats notifications say which init begins to exit")
	} else {
		log.WithFields(logrus.Fields{"check_interval": w.o.CheckInterval, "reason": w.exitErr}).
			Warn("watcher started without the kernel's exit notifications: polling every init's PF_EXITING")
	}
	w.emit(Event{Kind: EventExitSource, Err: w.exitSourceErr()})
	now := time.Now()
	w.rescan(now)
	if w.exits != nil {
		// An init that began to exit before it was tracked sent its
		// notification to nobody.
		w.checkExits(now, true)
	}
	w.emit(Event{Kind: EventReady})

	err := w.loop(ctx, rescueCtx)
	w.shutdown(cancelRescues)
	w.state.remove(w.log)
	w.log.Info("watcher stopped")
	return err
}

// loop is the one event loop: poll every descriptor, act, repeat.
func (w *Watcher) loop(ctx, rescueCtx context.Context) error {
	// With exit notifications every init is checked only as a safety
	// net; the inits that began to exit are checked at their deadline.
	checkInterval := w.o.CheckInterval
	if w.exits != nil {
		checkInterval = w.o.SafetyCheckInterval
	}
	now := time.Now()
	nextCheck := now.Add(checkInterval)
	nextRescan := now.Add(w.o.RescanInterval)
	var woke time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		if gap := minWakeGap - time.Since(woke); gap > 0 {
			time.Sleep(gap)
		}
		w.state.maybeWrite(w, time.Now())
		due := earliest(nextCheck, nextRescan, w.nextDeadline(), w.nextMountSlot(), w.nextRescueDeadline(), w.state.due(), w.nextExitsSlot(), w.nextLostCheck())
		// The floor keeps a deadline that cannot be acted on (an unreadable
		// stat) from spinning the loop.
		timeout := max(time.Until(due), minPoll)
		ready, err := w.poll.wait(int((timeout + time.Millisecond - 1) / time.Millisecond))
		if err != nil {
			return err
		}
		now = time.Now()
		woke = now
		w.dispatch(ready, now)
		w.takeResults(now)
		w.warm(now)
		w.warmExits(now)
		if !now.Before(nextRescan) {
			w.rescan(now)
			nextRescan = now.Add(w.o.RescanInterval)
		}
		if w.roomFreed {
			w.trackRefused(now)
		}
		lost := !w.lostCheckDue.IsZero() && !now.Before(w.lostCheckDue)
		if lost {
			w.lostCheckDue, w.lostCheckNext = time.Time{}, now.Add(w.o.CheckInterval)
		}
		if all := lost || !now.Before(nextCheck); all || !now.Before(w.nextDeadline()) {
			// Polling checks every init at a deadline too: one may have
			// begun to exit since the last check.
			w.checkExits(now, all || w.exits == nil)
			if all && !lost {
				nextCheck = now.Add(checkInterval)
			}
		}
		w.abandonOverdue(now)
		w.startRescues(rescueCtx, now)
	}
}

// earliest of time values.
func earliest(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.Before(m) {
			m = t
		}
	}
	return m
}

// nextDeadline is the earliest time an exiting init's grace runs out, so
// that detection does not wait for the next regular check.
func (w *Watcher) nextDeadline() time.Time {
	d := time.Now().Add(time.Hour)
	for t := range w.exiting {
		if t.rescue != nil || t.queued {
			continue
		}
		due := t.exitingSince.Add(w.o.Grace)
		if t.nextRescue.After(due) {
			due = t.nextRescue
		}
		if due.Before(d) {
			d = due
		}
	}
	return d
}

// dispatch handles the descriptors that are ready. Exits are handled
// last: a mount-table change and the exit may come in the same round.
func (w *Watcher) dispatch(ready []pollRef, now time.Time) {
	var exited []*tracked
	var b readBatch
	for _, r := range ready {
		switch r.kind {
		case pollWake:
			var b [8]byte
			_, _ = unix.Read(w.wakeFD(), b[:])
		case pollDir:
			w.readDir(now)
		case pollExits:
			w.readExits(now)
		case pollMounts:
			if w.tracks[r.t.rec.ID] == r.t && r.t.mntFD >= 0 {
				w.mountsChanged(r.t, &b, now)
			}
		case pollInit:
			exited = append(exited, r.t)
		}
	}
	for _, t := range exited {
		if w.tracks[t.rec.ID] == t {
			w.forget(t, "init exited")
		}
	}
}

func (w *Watcher) readDir(now time.Time) {
	evs, overflow, err := w.dir.read(w.inoBuf)
	if err != nil {
		w.log.WithError(err).Error("state directory watch failed")
		w.failed("", err)
	}
	if overflow {
		w.log.Warn("inotify queue overflowed: rescanning")
		w.rescan(now)
		return
	}
	for _, ev := range evs {
		w.fileChanged(ev, now)
	}
}

// exitSourceErr is why the exit notifications are not used, nil when they
// are.
func (w *Watcher) exitSourceErr() error {
	if w.exits != nil {
		return nil
	}
	return errors.New(w.exitErr)
}

// signal wakes the loop. Under mu: a rescue that outlives Run must not
// write to a closed (or reused) descriptor.
func (w *Watcher) signal() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wake < 0 {
		return
	}
	b := [8]byte{1}
	_, _ = unix.Write(w.wake, b[:])
}

// failed emits EventError for err, already logged, about container id ("":
// the watcher's own).
func (w *Watcher) failed(id string, err error) {
	w.emit(Event{Kind: EventError, ID: id, Err: err})
}

func (w *Watcher) emit(ev Event) {
	if w.o.OnEvent == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	w.o.OnEvent(ev)
}

// shutdown waits for rescues in flight, cancelling them after the timeout.
func (w *Watcher) shutdown(cancel context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		w.rescues.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(w.o.ShutdownTimeout):
	}
	w.log.Warn("rescues still running at shutdown: cancelling them")
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		w.log.Error("rescues did not end after cancellation")
	}
}

// Rescue results.
type rescueResult struct {
	run    *rescueRun
	rec    *record.Record
	report killer.Report
	err    error
}

func (w *Watcher) post(r rescueResult) {
	w.mu.Lock()
	w.results = append(w.results, r)
	w.mu.Unlock()
	w.signal()
}

// wakeFD is the eventfd, read by the loop only while Run owns it.
func (w *Watcher) wakeFD() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wake
}

func (w *Watcher) takeResults(now time.Time) {
	w.mu.Lock()
	rs := w.results
	w.results = nil
	w.mu.Unlock()
	for _, r := range rs {
		w.rescued(r, now)
	}
}
