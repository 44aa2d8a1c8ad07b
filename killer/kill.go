package killer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// Kill SIGKILLs the target and makes sure it dies: wait up to VerifyTimeout;
// if it is still there, diagnose within DiagnoseTimeout, then abort what the
// policy allows and wait for the exit, both within RecoverTimeout. The whole
// call runs under one deadline, opts.Bound() from its start (or ctx's, if
// earlier), whatever the container does.
//
// The error is nil for outcomes exited, recovered and already-gone; it wraps
// ErrStillStuck when the target survived (also when the bound ran out),
// ErrStaleTarget when the pid was reused, ErrUnprovenTarget when the start
// time could not be read and nothing else proved the target (see Open), or
// the context's error when the caller's ctx ended first.
func Kill(ctx context.Context, t Target, opts Options) (Report, error) {
	o := opts.withDefaults()
	begin := time.Now()
	bounded, cancel := context.WithDeadline(ctx, begin.Add(o.Bound()-returnMargin))
	defer cancel()
	r := newRun(bounded, o, t)
	r.begin, r.caller = begin, ctx
	err := r.kill()
	r.finish(err)
	return r.rep, err
}

// run is one Kill in progress: its clock, its spans and its report.
type run struct {
	ctx    context.Context // under the Kill's deadline
	caller context.Context // the caller's, to tell its end from the bound's
	o      Options
	span   trace.Span
	begin  time.Time
	rep    Report
}

func newRun(ctx context.Context, o Options, t Target) *run {
	opts := []trace.SpanStartOption{trace.WithAttributes(
		telemetry.ProcessPID(t.PID),
		telemetry.VerifyOnly(o.VerifyOnly),
	)}
	if rec := o.Record; rec != nil {
		opts = append(opts, trace.WithAttributes(telemetry.ContainerID(rec.ID)))
		// The kill is its own trace (or the caller's); the link ties it to
		// the container's start, whose span context the hook recorded.
		if rec.TraceParent != "" {
			if sc, err := telemetry.ParseTraceParent(rec.TraceParent); err == nil {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
			} else {
				o.Log.WithError(err).WithField("id", rec.ID).Debug("record's trace context not linked")
			}
		}
	}
	ctx, span := o.Tracer.Start(ctx, "fuseguard.kill", opts...)
	return &run{ctx: ctx, o: o, span: span, begin: time.Now(), rep: Report{Target: t}}
}

// stage times one stage, as a child span and a Stage of the report.
func (r *run) stage(name string, f func(ctx context.Context, span trace.Span) error) error {
	st, err := RunStage(r.ctx, r.o.Tracer, "fuseguard.kill."+name, name, r.begin, f)
	r.rep.Stages = append(r.rep.Stages, st)
	return err
}

// RunStage runs f as the stage name of a run that began at begin: under a
// child span spanName of ctx's span (attribute fuseguard.stage = name)
// that records f's error, timed as the Stage it returns with f's error.
// Kill and the executor time their stages with it.
func RunStage(ctx context.Context, tr trace.Tracer, spanName, name string, begin time.Time, f func(ctx context.Context, span trace.Span) error) (Stage, error) {
	ctx, span := tr.Start(ctx, spanName, trace.WithAttributes(telemetry.Stage(name)))
	start := time.Now()
	err := f(ctx, span)
	st := Stage{Name: name, Start: start.Sub(begin), Duration: time.Since(start)}
	if err != nil {
		st.Err = err.Error()
	}
	telemetry.End(span, err)
	return st, err
}

func (r *run) kill() error {
	var pr *Process
	err := r.stage("open", func(ctx context.Context, _ trace.Span) (err error) {
		// The start time's read is one task read: a target asleep inside
		// execve must not spend the whole bound here.
		ctx, cancel := context.WithTimeout(ctx, r.o.ReadTimeout())
		defer cancel()
		pr, err = Open(ctx, r.o.Proc, r.rep.Target)
		return err
	})
	if errors.Is(err, ErrNoTarget) {
		r.rep.Outcome = OutcomeAlreadyGone
		return nil
	}
	if err != nil {
		return err
	}
	defer pr.Close()

	// init's mount table, held open before the signal: scope when there is
	// no record, and a live table of the container that proves which
	// connections are its (see connSet) in any case.
	var held *heldSnapshot
	if !r.o.VerifyOnly {
		_ = r.stage("snapshot", func(context.Context, trace.Span) (err error) {
			held, err = holdSnapshot(r.o.Proc, r.rep.Target.PID)
			return err
		})
		defer held.close()
	}

	if !r.o.VerifyOnly {
		if err := r.stage("signal", func(context.Context, trace.Span) error { return pr.Signal(unix.SIGKILL) }); err != nil {
			return err
		}
	}
	if done, err := r.wait(pr, "verify", r.o.VerifyTimeout); err != nil || done {
		return r.outcome(done, OutcomeExited, err)
	}

	var d *Diagnosis
	err = r.stage("diagnose", func(ctx context.Context, span trace.Span) (err error) {
		st, rec := r.scope(ctx, pr, held)
		d, err = diagnose(ctx, r.o, st, rec, held)
		if d != nil {
			span.SetAttributes(d.Attributes()...)
			// The root span too, so that a search by tag finds the kill.
			r.span.SetAttributes(d.stuckAttributes()...)
		}
		return err
	})
	r.rep.Diagnosis = d
	if err != nil {
		return r.outcome(false, "", err)
	}
	r.rep.Refused = d.Refused
	// The aborts and the wait after them share one budget.
	recoverCtx, cancel := context.WithTimeout(r.ctx, r.o.RecoverTimeout)
	defer cancel()
	for _, a := range d.Plan {
		r.abort(recoverCtx, a)
	}
	if len(r.rep.Aborted) == 0 {
		// Nothing to abort: one last look, the exit may have raced the diagnosis.
		done, err := r.wait(pr, "reverify", 0)
		return r.outcome(done, OutcomeExited, err)
	}
	deadline, _ := recoverCtx.Deadline()
	done, err := r.wait(pr, "reverify", time.Until(deadline))
	return r.outcome(done, OutcomeRecovered, err)
}

// scope is what the diagnosis knows of init and its container: the caller's
// record, else the snapshot held since before the signal, else init alone.
func (r *run) scope(ctx context.Context, pr *Process, held *heldSnapshot) (proc.Stat, *record.Record) {
	st := pr.stat
	if st.PID == 0 {
		// Not read at open (no start time to check): read it now, from a
		// task that is by now dying; its comm and state are still there.
		ctx, cancel := context.WithTimeout(ctx, r.o.ReadTimeout())
		defer cancel()
		if s, err := r.o.Proc.Stat(ctx, r.rep.Target.PID); err == nil {
			st = s
		} else {
			st = statusStat(r.o.Proc, r.rep.Target.PID)
		}
	}
	if st.StartTime != 0 {
		r.rep.Target.StartTime = st.StartTime
	}
	if r.o.Record != nil {
		return st, r.o.Record
	}
	if held != nil {
		rec, err := held.record(r.o.Proc, st)
		if err != nil {
			r.o.Log.WithError(err).Debug("partial snapshot")
		}
		return st, rec
	}
	return st, &record.Record{InitPID: st.PID, InitStartTime: st.StartTime}
}

// abort aborts one planned connection (or, in a dry run, only reports it),
// within the recovery budget's ctx.
func (r *run) abort(budget context.Context, a Abort) {
	_ = r.stage("abort", func(ctx context.Context, span trace.Span) error {
		span.SetAttributes(
			telemetry.Conn(uint32(a.Conn)),
			telemetry.ConnGen(uint64(a.Gen)),
			telemetry.FSType(a.FSType),
			telemetry.MountPoint(a.MountPoint),
			telemetry.Owned(a.Owned),
			telemetry.Waiting(a.Waiting),
			telemetry.Reason(a.Reason),
			telemetry.Dedicated(a.Dedicated),
			telemetry.DryRun(r.o.Policy.DryRun),
		)
		if r.o.Policy.DryRun {
			r.rep.Aborted = append(r.rep.Aborted, a)
			return nil
		}
		ctx, cancel := context.WithDeadline(ctx, deadlineOf(budget))
		defer cancel()
		// Abort exactly the instance the diagnosis proved the container's:
		// the id may have been handed to another mount since.
		err := r.o.Control.AbortInstance(ctx, fuseconn.ConnRef{ID: a.Conn, Gen: a.Gen})
		a.Done = err == nil
		if err != nil {
			a.Err = err.Error()
		}
		log := r.o.Log.WithField("conn", a.Conn).WithField("reason", a.Reason)
		if err != nil {
			log.WithError(err).Error("abort of FUSE connection failed")
		} else {
			log.Info("aborted FUSE connection")
		}
		r.rep.Aborted = append(r.rep.Aborted, a)
		return err
	})
}

// wait is one bounded wait for the exit, as a stage.
func (r *run) wait(pr *Process, name string, d time.Duration) (done bool, err error) {
	_ = r.stage(name, func(ctx context.Context, span trace.Span) error {
		done, err = pr.Wait(ctx, d)
		span.SetAttributes(telemetry.Exited(done))
		return err
	})
	return done, err
}

// outcome sets the report's outcome from the last wait. The Kill's own
// deadline running out is still-stuck, not the caller's context error.
func (r *run) outcome(done bool, ok Outcome, err error) error {
	if err != nil && errors.Is(err, context.DeadlineExceeded) && r.caller.Err() == nil {
		r.rep.Outcome = OutcomeStillStuck
		return fmt.Errorf("pid %d alive at the bound %v: %w", r.rep.Target.PID, r.o.Bound(), ErrStillStuck)
	}
	switch {
	case done:
		r.rep.Outcome = ok
		return nil
	case err != nil:
		r.rep.Outcome = OutcomeStillStuck
		return err
	default:
		r.rep.Outcome = OutcomeStillStuck
		return fmt.Errorf("pid %d alive after %v: %w", r.rep.Target.PID, time.Since(r.begin).Round(time.Millisecond), ErrStillStuck)
	}
}

func (r *run) finish(err error) {
	r.rep.Total = time.Since(r.begin)
	r.span.SetAttributes(telemetry.Outcome(string(r.rep.Outcome)),
		telemetry.Aborted(len(r.rep.Aborted)))
	telemetry.End(r.span, err)
}

// deadlineOf is ctx's deadline; ctx must have one.
func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
