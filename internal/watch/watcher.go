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
	pfds    []unix.PollFd
	refs    []pollRef
	dirty   bool   // pfds must be rebuilt
	mntBuf  []byte // reused by every mountinfo read
	inoBuf  []byte
	rescues sync.WaitGroup

	cooling   map[*tracked]struct{}   // mount tables left out of poll until their next read slot
	running   map[*rescueRun]struct{} // rescues whose goroutine has not returned
	active    int                     // rescues in running not yet abandoned: at most MaxRescues
	queue     []*tracked              // stuck exits waiting for a rescue slot, oldest first
	refused   map[string]struct{}     // records not tracked: MaxTracked reached (at most maxRefusedIDs)
	overflow  int                     // records refused beyond maxRefusedIDs since the last rescan
	roomFreed bool                    // a record was forgotten while some were refused
	state     stateWriter

	mu      sync.Mutex     // guards results and wake
	results []rescueResult // posted by rescues, taken by the loop
}

// minPoll is the shortest poll timeout of the loop.
const minPoll = 5 * time.Millisecond

// mntBufKeep is the mountinfo buffer kept between reads; a larger one,
// grown for a large table, is dropped after the read.
const mntBufKeep = 64 << 10

// pollRef says what a polled descriptor is.
type pollRef struct {
	t     *tracked // nil for the eventfd and inotify
	mount bool     // the mountinfo descriptor, else the pidfd
}

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
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		dw.close()
		lock.Release()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &Watcher{
		o:       o,
		store:   record.Store{Dir: o.StateDir},
		log:     o.Log.WithField("state_dir", o.StateDir),
		lock:    lock,
		dir:     dw,
		wake:    wake,
		tracks:  map[string]*tracked{},
		cooling: map[*tracked]struct{}{},
		running: map[*rescueRun]struct{}{},
		refused: map[string]struct{}{},
		state:   stateWriter{store: record.Store{Dir: o.StateDir}},
		mntBuf:  make([]byte, 0, mntBufKeep),
		inoBuf:  make([]byte, 64<<10),
		dirty:   true,
	}, nil
}

// Close releases what New took; Run calls it on return.
func (w *Watcher) Close() error {
	for id, t := range w.tracks {
		t.close()
		delete(w.tracks, id)
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
	w.log.WithFields(logrus.Fields{"grace": w.o.Grace, "check_interval": w.o.CheckInterval}).Info("watcher started")
	w.rescan(time.Now())
	w.emit(Event{Kind: EventReady})

	err := w.loop(ctx, rescueCtx)
	w.shutdown(cancelRescues)
	w.state.remove(w.log)
	w.log.Info("watcher stopped")
	return err
}

// loop is the one event loop: poll every descriptor, act, repeat.
func (w *Watcher) loop(ctx, rescueCtx context.Context) error {
	now := time.Now()
	nextCheck := now.Add(w.o.CheckInterval)
	nextRescan := now.Add(w.o.RescanInterval)
	for {
		if ctx.Err() != nil {
			return nil
		}
		if w.dirty {
			w.rebuild()
		}
		w.state.maybeWrite(w, time.Now())
		due := earliest(nextCheck, nextRescan, w.nextDeadline(), w.nextMountSlot(), w.nextRescueDeadline(), w.state.due())
		// The floor keeps a deadline that cannot be acted on (an unreadable
		// stat) from spinning the loop.
		timeout := max(time.Until(due), minPoll)
		_, err := unix.Poll(w.pfds, int((timeout+time.Millisecond-1)/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll: %w", err)
		}
		now = time.Now()
		w.dispatch(now)
		w.takeResults(now)
		w.warm(now)
		if !now.Before(nextRescan) {
			w.rescan(now)
			nextRescan = now.Add(w.o.RescanInterval)
		}
		if w.roomFreed {
			w.trackRefused(now)
		}
		if !now.Before(nextCheck) || !now.Before(w.nextDeadline()) {
			w.checkExits(now)
			if !now.Before(nextCheck) {
				nextCheck = now.Add(w.o.CheckInterval)
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
	for _, t := range w.tracks {
		if t.exitingSince.IsZero() || t.rescue != nil || t.queued {
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

func (w *Watcher) rebuild() {
	w.pfds = w.pfds[:0]
	w.refs = w.refs[:0]
	add := func(fd int, ev int16, r pollRef) {
		w.pfds = append(w.pfds, unix.PollFd{Fd: int32(fd), Events: ev})
		w.refs = append(w.refs, r)
	}
	add(w.wakeFD(), unix.POLLIN, pollRef{})
	add(w.dir.fd, unix.POLLIN, pollRef{})
	for _, t := range w.tracks {
		add(t.pidfd, unix.POLLIN, pollRef{t: t})
		t.mntIdx = -1
		if t.mntFD >= 0 {
			t.mntIdx = len(w.pfds)
			add(t.mntFD, unix.POLLPRI, pollRef{t: t, mount: true})
			if t.cooling {
				w.pfds[t.mntIdx].Fd = -1
			}
		}
	}
	w.dirty = false
}

// dispatch handles the descriptors poll reported. Exits are handled last:
// a mount-table change and the exit may come in the same round.
func (w *Watcher) dispatch(now time.Time) {
	var exited []*tracked
	for i, p := range w.pfds {
		if p.Revents == 0 {
			continue
		}
		r := w.refs[i]
		switch {
		case i == 0:
			var b [8]byte
			_, _ = unix.Read(w.wakeFD(), b[:])
		case i == 1:
			w.readDir(now)
		case r.t.pidfd < 0:
			// untracked earlier in this round
		case r.mount:
			w.refresh(r.t, nil, now, "mount-table change")
		default:
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
