package executor

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/killer"
)

// run is one Kill or Stop in progress: its clock, its root span and its
// report.
type run struct {
	k     *Killer
	ctx   context.Context // carries the root span
	span  trace.Span
	begin time.Time
	rep   Report
	// dockerDown: a call found Docker unresponsive; later optional calls
	// (the confirming inspect) are skipped rather than waited on again.
	dockerDown error
}

func (k *Killer) newRun(ctx context.Context, name, id string) *run {
	ctx, span := k.tracer().Start(ctx, "executor."+name, trace.WithAttributes(telemetry.ContainerID(id)))
	return &run{k: k, ctx: ctx, span: span, begin: time.Now(), rep: Report{ContainerID: id, Outcome: OutcomeUnknown}}
}

// stage times one stage, as a child span and a Stage of the report.
func (r *run) stage(name string, f func(ctx context.Context, span trace.Span) error) error {
	st, err := killer.RunStage(r.ctx, r.k.tracer(), "executor."+name, name, r.begin, f)
	log := r.k.log().WithField("container", shortID(r.rep.ContainerID)).WithField("stage", name).WithField("took", st.Duration)
	if err != nil {
		log.WithError(err).Warn("executor stage failed")
	} else {
		log.Debug("executor stage")
	}
	r.rep.Stages = append(r.rep.Stages, st)
	return err
}

func (r *run) note(format string, args ...any) {
	r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(format, args...))
}

// finish closes the root span and stamps the report.
func (r *run) finish(err error) (Report, error) {
	r.rep.Total = time.Since(r.begin)
	r.span.SetAttributes(telemetry.Outcome(string(r.rep.Outcome)))
	if r.rep.Target.PID != 0 {
		r.span.SetAttributes(telemetry.ProcessPID(r.rep.Target.PID))
	}
	if err != nil {
		r.span.RecordError(err)
		r.span.SetStatus(codes.Error, err.Error())
	}
	r.span.End()
	log := r.k.log().WithField("container", shortID(r.rep.ContainerID)).
		WithField("outcome", r.rep.Outcome).WithField("took", r.rep.Total)
	if err != nil {
		log.WithError(err).Warn("executor done")
	} else {
		log.Info("executor done")
	}
	return r.rep, err
}
