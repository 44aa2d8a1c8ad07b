package watch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// checkExits reads PF_EXITING of every tracked init and queues a rescue
// for each that has been exiting for longer than the grace. This is the one
// periodic read, kept cheap for thousands of containers: a pread of the
// held /proc/PID/schedstat per init (no path lookup, no allocation), and
// /proc/PID/stat only for an init that has run since the last look or is
// already exiting. schedstat takes no lock of the task; the stat read can
// sleep behind an init in execve, so it is bounded (see readStat).
//
// With all false only the inits already exiting are checked (their grace
// may have run out): with exit notifications, the others are checked when
// theirs comes.
func (w *Watcher) checkExits(now time.Time, all bool) {
	var buf [statBuf]byte
	if !all {
		for t := range w.exiting {
			w.checkExit(t, now, &buf, true)
		}
		return
	}
	for _, t := range w.tracks {
		w.checkExit(t, now, &buf, true)
	}
}

// readExits reads the pending exit notifications and checks each tracked
// init that began to exit; on lost notifications (ENOBUFS) it has every
// init checked, at once or, after another such check less than
// CheckInterval ago, then.
//
// A notification names a thread; only the one of init's leader (pid ==
// tgid) is looked at, and it is enough: the stuck exit is init's leader
// with PF_EXITING, a flag of that thread alone, set by its own do_exit
// (exit_signals) right before its notification. However a multi-threaded
// init ends (all threads killed, the leader exiting first while another
// thread is the one left blocked in the last file's flush, or the last
// thread in zap_pid_ns_processes), the leader's notification comes as its
// flag is set; the other threads' ones add nothing. The socket is then left out of poll for exitDrainInterval, so that
// a host with many exits wakes the loop at most that often.
func (w *Watcher) readExits(now time.Time) {
	var buf [statBuf]byte
	overrun, err := w.exits.drain(func(pid int) {
		if t := w.byPID[pid]; t != nil && t.exitingSince.IsZero() {
			// The notification comes after PF_EXITING is set: read it
			// through the held descriptor all the same, which proves it is
			// the tracked process (a pid may be reused). The exit began
			// after the loop woke (now): the grace counts from this read.
			w.checkExit(t, time.Now(), &buf, false)
		}
	})
	if err != nil {
		w.log.WithError(err).Warn("cannot read the exit notifications: checking every init")
		w.failed("", err)
		overrun = true
	}
	if overrun {
		w.exitOverruns++
		w.state.changed()
		log := w.log.WithField("overruns", w.exitOverruns)
		if w.exitOverruns == 1 {
			log.Warn("exit notifications lost (socket buffer full): checking every init; further losses are logged at debug level")
		} else {
			log.Debug("exit notifications lost: checking every init")
		}
		if w.lostCheckDue.IsZero() {
			w.lostCheckDue = later(now, w.lostCheckNext)
		}
	}
	w.poll.del(w.exits.fd)
	w.exitsNext = now.Add(exitDrainInterval)
}

// nextLostCheck is when every init is checked for lost notifications; far
// off when none is due.
func (w *Watcher) nextLostCheck() time.Time {
	if w.lostCheckDue.IsZero() {
		return time.Now().Add(time.Hour)
	}
	return w.lostCheckDue
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// nextExitsSlot is when the exit socket is polled again; far off while it
// is polled.
func (w *Watcher) nextExitsSlot() time.Time {
	if w.exits == nil || w.poll.registered(w.exits.fd) {
		return time.Now().Add(time.Hour)
	}
	return w.exitsNext
}

// warmExits puts the exit socket back into poll once its slot has come.
func (w *Watcher) warmExits(now time.Time) {
	if w.exits == nil || w.poll.registered(w.exits.fd) || now.Before(w.exitsNext) {
		return
	}
	if err := w.poll.add(w.exits.fd, unix.EPOLLIN, pollRef{kind: pollExits}); err != nil {
		// Cannot happen for an open socket; the safety check goes on.
		w.log.WithError(err).Error("cannot poll the exit notifications")
		w.failed("", err)
	}
}

// checkExit reads t's PF_EXITING and queues a rescue once it has been
// exiting for longer than the grace. skipIdle skips the stat read of an
// init that has not run since the last look (see tracked.ran).
func (w *Watcher) checkExit(t *tracked, now time.Time, buf *[statBuf]byte, skipIdle bool) {
	if t.rescue != nil || t.queued {
		return
	}
	if skipIdle && !t.ran(buf) && t.exitingSince.IsZero() {
		return // idle since the last look: it cannot have started exiting
	}
	raw, err := t.readStat()
	switch {
	case err == nil:
		t.statBlocked = false
	case proc.Unanswered(err):
		if !t.statBlocked {
			t.statBlocked = true
			w.log.WithError(err).WithFields(logrus.Fields{"container": t.rec.ID, "pid": t.rec.InitPID}).
				Warn("init's stat does not answer (init is inside execve, behind its exec lock): its exit is checked again once it does")
		}
		return
	default:
		if !errors.Is(err, unix.ESRCH) {
			w.log.WithError(err).WithField("container", t.rec.ID).Debug("cannot read init's stat")
		}
		return // reaped: the pidfd reports it
	}
	state, exiting, err := exitState(raw)
	if err != nil {
		w.log.WithError(err).WithField("container", t.rec.ID).Warn("cannot parse init's stat")
		w.failed(t.rec.ID, err)
		return
	}
	if !exiting {
		t.exitingSince = time.Time{}
		delete(w.exiting, t)
		return
	}
	if t.exitingSince.IsZero() {
		t.exitingSince = now
		w.exiting[t] = struct{}{}
		w.log.WithFields(logrus.Fields{"container": t.rec.ID, "pid": t.rec.InitPID, "state": string([]byte{state})}).Debug("init is exiting")
		w.emit(Event{Kind: EventExiting, ID: t.rec.ID, PID: t.rec.InitPID})
	}
	if now.Sub(t.exitingSince) >= w.o.Grace && !now.Before(t.nextRescue) {
		w.detect(t, string([]byte{state}), now)
	}
}

// detect logs a stuck exit and queues its rescue.
func (w *Watcher) detect(t *tracked, state string, now time.Time) {
	exitingFor := now.Sub(t.exitingSince)
	w.log.WithFields(logrus.Fields{
		"container": t.rec.ID, "pid": t.rec.InitPID,
		"exiting_for": exitingFor.Round(time.Millisecond).String(), "grace": w.o.Grace.String(),
		"state": state, "connections": connIDs(t.rec.Connections), "attempt": t.failures + 1,
		"rescues_running": w.active, "rescues_queued": len(w.queue),
	}).Warn("stuck exit detected: rescuing")
	w.emit(Event{Kind: EventDetected, ID: t.rec.ID, PID: t.rec.InitPID})
	t.queued = true
	w.queue = append(w.queue, t)
	w.state.changed()
}

// rescueRun is one rescue in flight.
type rescueRun struct {
	t         *tracked
	deadline  time.Time
	abandoned bool // past its deadline: its slot was given back
}

// abandonSlack is how long past its deadline a rescue may take to return
// before its slot is given to the next container: killer.Kill honours its
// context, so only a read that ignores it (a /proc file of a task whose
// exec lock is held forever) gets there.
const abandonSlack = time.Second

// startRescues starts queued rescues while fewer than MaxRescues run. Each
// runs beside the loop under its own deadline, at most one per container.
func (w *Watcher) startRescues(ctx context.Context, now time.Time) {
	for w.active < w.o.MaxRescues && len(w.queue) > 0 {
		t := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		if !t.queued || w.tracks[t.rec.ID] != t {
			continue // forgotten while queued
		}
		t.queued = false
		w.start(ctx, t, now)
	}
	if len(w.queue) == 0 {
		w.queue = nil // drop the backing array a burst grew
	}
}

func (w *Watcher) start(ctx context.Context, t *tracked, now time.Time) {
	rec := copyRecord(t.rec)
	run := &rescueRun{t: t, deadline: now.Add(w.o.RescueTimeout)}
	t.rescue = run
	w.running[run] = struct{}{}
	w.active++
	w.state.changed()
	ctx, cancel := context.WithDeadline(ctx, run.deadline)
	ctx, span := w.o.Tracer.Start(ctx, "fuseguard.watch.detect", trace.WithAttributes(
		telemetry.ContainerID(rec.ID),
		telemetry.ProcessPID(rec.InitPID),
		telemetry.ExitingFor(now.Sub(t.exitingSince)),
		telemetry.RecordedConnections(len(rec.Connections)),
		telemetry.Attempt(t.failures+1),
	))
	log := w.log.WithFields(logrus.Fields{"container": rec.ID, "pid": rec.InitPID})
	w.rescues.Add(1)
	go func() {
		defer w.rescues.Done()
		defer span.End()
		defer cancel()
		// Stacks take the task's exec lock: read here, never on the loop.
		inZap := w.inZap(ctx, rec.InitPID)
		span.SetAttributes(telemetry.InitInZap(inZap))
		log.WithField("in_zap", inZap).Debug("rescue started")
		rep, err := w.rescue(ctx, rec, log)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		w.post(rescueResult{run: run, rec: rec, report: rep, err: err})
	}()
}

// nextRescueDeadline is when the earliest rescue in flight is overdue.
func (w *Watcher) nextRescueDeadline() time.Time {
	d := time.Now().Add(time.Hour)
	for run := range w.running {
		if !run.abandoned && run.deadline.Add(abandonSlack).Before(d) {
			d = run.deadline.Add(abandonSlack)
		}
	}
	return d
}

// abandonOverdue gives back the slot of every rescue past its deadline: one
// container's rescue stuck in the kernel must not hold back the others'.
// The container stays marked as rescuing until its rescue returns, so that
// it never has two at once.
func (w *Watcher) abandonOverdue(now time.Time) {
	for run := range w.running {
		if run.abandoned || now.Before(run.deadline.Add(abandonSlack)) {
			continue
		}
		run.abandoned = true
		w.active--
		t := run.t
		t.failures++
		t.lastErr = fmt.Sprintf("rescue still running %s after its deadline (%s): abandoned", abandonSlack, w.o.RescueTimeout)
		w.state.changed()
		w.log.WithFields(logrus.Fields{"container": t.rec.ID, "pid": t.rec.InitPID, "timeout": w.o.RescueTimeout.String()}).
			Error("rescue overran its deadline: giving its slot to other containers; retrying once it returns")
		w.emit(Event{Kind: EventAbandoned, ID: t.rec.ID, PID: t.rec.InitPID, Time: now})
	}
}

// rescue is killer.Kill without the signal: the diagnosis picks what to
// abort under the policy, and a slow exit with nothing waiting on FUSE gets
// an empty plan.
func (w *Watcher) rescue(ctx context.Context, rec *record.Record, log logrus.FieldLogger) (killer.Report, error) {
	ctx, span := w.o.Tracer.Start(ctx, "fuseguard.watch.rescue", trace.WithAttributes(
		telemetry.ContainerID(rec.ID), telemetry.ProcessPID(rec.InitPID)))
	defer span.End()
	ko := rescueKillOptions(w.o.RecoverTimeout)
	ko.Policy, ko.Record, ko.Proc, ko.Control, ko.Log, ko.Tracer = w.o.Policy, rec, w.o.Proc, w.o.Control, log, w.o.Tracer
	rep, err := killer.Kill(ctx, killer.RecordTarget(rec), ko)
	span.SetAttributes(telemetry.Outcome(string(rep.Outcome)), telemetry.Aborted(len(rep.Aborted)))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return rep, err
}

// rescued logs a finished rescue and, if init is still there, schedules
// the next one after a backoff that doubles with each failure.
func (w *Watcher) rescued(r rescueResult, now time.Time) {
	run := r.run
	delete(w.running, run)
	if !run.abandoned {
		w.active--
	}
	w.state.changed()
	t := run.t
	current := w.tracks[t.rec.ID] == t
	if current {
		t.rescue = nil
		if r.err == nil {
			t.failures, t.lastErr = 0, ""
		} else {
			if !run.abandoned {
				t.failures++ // an abandoned one was counted then
			}
			t.lastErr = r.err.Error()
		}
		t.nextRescue = now.Add(backoff(w.o.RetryInterval, w.o.MaxRetryInterval, max(t.failures, 1)))
	}
	retryIn := backoff(w.o.RetryInterval, w.o.MaxRetryInterval, max(t.failures, 1)).String()
	log := w.log.WithFields(logrus.Fields{
		"container": r.rec.ID, "pid": r.rec.InitPID, "outcome": r.report.Outcome,
		"took": r.report.Total.Round(time.Millisecond).String(),
	})
	for _, a := range r.report.Aborted {
		log.WithFields(logrus.Fields{"conn": a.Conn, "fs_type": a.FSType, "mount_point": a.MountPoint,
			"waiting": a.Waiting, "done": a.Done, "reason": a.Reason}).Warn("rescue aborted FUSE connection")
	}
	for _, a := range r.report.Refused {
		log.WithFields(logrus.Fields{"conn": a.Conn, "fs_type": a.FSType, "mount_point": a.MountPoint,
			"reason": a.Reason}).Warn("rescue kept shared FUSE connection")
	}
	// The outcome's line names the tasks whose evidence could not be read.
	if unreadable := r.report.Diagnosis.UnreadableTasks(); len(unreadable) > 0 {
		log = log.WithField("unreadable", unreadable)
	}
	switch {
	case r.err == nil && r.report.Outcome == killer.OutcomeRecovered:
		log.Warn("rescued: init exited after the abort")
	case r.err == nil:
		log.Info("init exited; nothing to abort")
	case len(r.report.Aborted) == 0 && len(r.report.Refused) > 0 && errors.Is(r.err, killer.ErrStillStuck):
		log.WithFields(logrus.Fields{"retry_in": retryIn, "failures": t.failures}).Error("rescue refused by the policy: init still stuck")
	case len(r.report.Aborted) == 0 && errors.Is(r.err, killer.ErrStillStuck):
		log.WithFields(logrus.Fields{"retry_in": retryIn, "failures": t.failures}).Info("exit is slow but nothing waits on FUSE: not touched")
	default:
		log.WithError(r.err).WithFields(logrus.Fields{"retry_in": retryIn, "failures": t.failures}).Error("rescue failed: init still stuck")
	}
	rep := r.report
	w.emit(Event{Kind: EventRescued, ID: r.rec.ID, PID: r.rec.InitPID, Report: &rep, Err: r.err, Time: now})
}

// inZap reports whether a thread of init waits in zap_pid_ns_processes
// (read at detection only: stacks are not cheap). It spends at most one
// task read of the rescue's ctx: a stack read sleeps behind an init inside
// execve, and the rescue that follows needs the rest.
func (w *Watcher) inZap(ctx context.Context, pid int) bool {
	tids, err := w.o.Proc.Tasks(pid)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, rescueKillOptions(w.o.RecoverTimeout).ReadTimeout())
	defer cancel()
	for _, tid := range tids {
		if st, err := w.o.Proc.Stack(ctx, tid); err == nil && killer.InZap(st) {
			return true
		}
	}
	return false
}
