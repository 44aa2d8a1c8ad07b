package watch

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/killer"
)

// zapFrame is where a namespace's init waits for the rest of it to die.
const zapFrame = "zap_pid_ns_processes"

// checkExits reads PF_EXITING of every tracked init and starts a rescue for
// each that has been exiting for longer than the grace. This is the one
// periodic read, kept cheap for thousands of containers: a pread of the
// held /proc/PID/schedstat per init (no path lookup, no allocation), and
// /proc/PID/stat only for an init that has run since the last look or is
// already exiting.
func (w *Watcher) checkExits(ctx context.Context, now time.Time) {
	var buf [statBuf]byte
	for _, t := range w.tracks {
		if t.rescuing {
			continue
		}
		if !t.ran(&buf) && t.exitingSince.IsZero() {
			continue // idle since the last look: it cannot have started exiting
		}
		raw, err := t.readStat(&buf)
		if err != nil {
			if !errors.Is(err, unix.ESRCH) {
				w.log.WithError(err).WithField("container", t.rec.ID).Debug("cannot read init's stat")
			}
			continue // reaped: the pidfd reports it
		}
		state, exiting, err := exitState(raw)
		if err != nil {
			w.log.WithError(err).WithField("container", t.rec.ID).Warn("cannot parse init's stat")
			continue
		}
		if !exiting {
			t.exitingSince = time.Time{}
			continue
		}
		if t.exitingSince.IsZero() {
			t.exitingSince = now
			w.log.WithFields(logrus.Fields{"container": t.rec.ID, "pid": t.rec.InitPID, "state": string([]byte{state})}).Debug("init is exiting")
			w.emit(Event{Kind: EventExiting, ID: t.rec.ID, PID: t.rec.InitPID})
		}
		if now.Sub(t.exitingSince) >= w.o.Grace && !now.Before(t.nextRescue) {
			w.detect(ctx, t, string([]byte{state}), now)
		}
	}
}

// detect logs a stuck exit and starts its rescue beside the loop.
func (w *Watcher) detect(ctx context.Context, t *tracked, state string, now time.Time) {
	rec := copyRecord(t.rec)
	inZap := w.inZap(rec.InitPID)
	exitingFor := now.Sub(t.exitingSince)
	ctx, span := w.o.Tracer.Start(ctx, "fuseguard.watch.detect", trace.WithAttributes(
		attribute.String("container.id", rec.ID),
		attribute.Int("process.pid", rec.InitPID),
		attribute.Int64("fuseguard.exiting_ms", exitingFor.Milliseconds()),
		attribute.Bool("fuseguard.init_in_zap", inZap),
		attribute.Int("fuseguard.recorded_connections", len(rec.Connections)),
	))
	log := w.log.WithFields(logrus.Fields{"container": rec.ID, "pid": rec.InitPID})
	log.WithFields(logrus.Fields{
		"exiting_for": exitingFor.Round(time.Millisecond).String(), "grace": w.o.Grace.String(),
		"state": state, "in_zap": inZap, "connections": connIDs(rec.Connections),
	}).Warn("stuck exit detected: rescuing")
	w.emit(Event{Kind: EventDetected, ID: rec.ID, PID: rec.InitPID})
	t.rescuing = true
	w.rescues.Add(1)
	go func() {
		defer w.rescues.Done()
		defer span.End()
		rep, err := w.rescue(ctx, rec, log)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		w.post(rescueResult{id: rec.ID, rec: rec, report: rep, err: err})
	}()
}

// rescue is killer.Kill without the signal: the diagnosis picks what to
// abort under the policy, and a slow exit with nothing waiting on FUSE gets
// an empty plan.
func (w *Watcher) rescue(ctx context.Context, rec *fuseguard.Record, log logrus.FieldLogger) (killer.Report, error) {
	ctx, span := w.o.Tracer.Start(ctx, "fuseguard.watch.rescue", trace.WithAttributes(
		attribute.String("container.id", rec.ID), attribute.Int("process.pid", rec.InitPID)))
	defer span.End()
	rep, err := killer.Kill(ctx, killer.Target{PID: rec.InitPID, StartTime: rec.InitStartTime}, killer.Options{
		VerifyOnly:     true,
		VerifyTimeout:  rescueVerify,
		RecoverTimeout: w.o.RecoverTimeout,
		Policy:         w.o.Policy,
		Record:         rec,
		Proc:           w.o.Proc,
		Control:        w.o.Control,
		Log:            log,
		Tracer:         w.o.Tracer,
	})
	span.SetAttributes(attribute.String("fuseguard.outcome", string(rep.Outcome)), attribute.Int("fuseguard.aborted", len(rep.Aborted)))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return rep, err
}

// rescued logs a finished rescue and schedules a retry if init is still
// there.
func (w *Watcher) rescued(r rescueResult, now time.Time) {
	log := w.log.WithFields(logrus.Fields{
		"container": r.id, "pid": r.rec.InitPID, "outcome": r.report.Outcome,
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
	switch {
	case r.err == nil && r.report.Outcome == killer.OutcomeRecovered:
		log.Warn("rescued: init exited after the abort")
	case r.err == nil:
		log.Info("init exited; nothing to abort")
	case len(r.report.Aborted) == 0 && errors.Is(r.err, killer.ErrStillStuck):
		log.WithField("retry_in", w.o.RetryInterval.String()).Info("exit is slow but nothing waits on FUSE: not touched")
	default:
		log.WithError(r.err).WithField("retry_in", w.o.RetryInterval.String()).Error("rescue failed: init still stuck")
	}
	rep := r.report
	w.emit(Event{Kind: EventRescued, ID: r.id, PID: r.rec.InitPID, Report: &rep, Err: r.err, Time: now})
	if t := w.tracks[r.id]; t != nil && sameInit(t.rec, r.rec) {
		t.rescuing = false
		t.nextRescue = now.Add(w.o.RetryInterval)
	}
}

// inZap reports whether a thread of init waits in zap_pid_ns_processes
// (read at detection only: stacks are not cheap).
func (w *Watcher) inZap(pid int) bool {
	tids, err := w.o.Proc.Tasks(pid)
	if err != nil {
		return false
	}
	for _, tid := range tids {
		if st, err := w.o.Proc.Stack(context.Background(), tid); err == nil && st.Has(zapFrame) {
			return true
		}
	}
	return false
}
