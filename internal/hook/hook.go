package hook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/obs"
	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// Options configure Run.
type Options struct {
	Store  record.Store        // where records live
	Proc   proc.FS             // zero value: /proc
	Log    logrus.FieldLogger  // nil: discard
	Tracer trace.Tracer        // nil: no spans
	Getenv func(string) string // nil: os.Getenv; read for TRACEPARENT
	Now    func() time.Time    // nil: time.Now
}

func (o Options) withDefaults() Options {
	o.Log = obs.Logger(o.Log)
	o.Tracer = obs.Tracer(o.Tracer)
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Run does what stage asks for the container described by st, which the
// caller read with oci.ReadState(…, stage): record (createRuntime,
// poststart) or forget (poststop). It returns the record it saved, nil at
// poststop. The caller bounds the work with ctx; Run itself only reads
// /proc and writes one small file.
func Run(ctx context.Context, stage oci.Stage, st *specs.State, opts Options) (*record.Record, error) {
	o := opts.withDefaults()
	if !stage.Valid() {
		return nil, fmt.Errorf("%w: %q", oci.ErrUnknownStage, stage)
	}
	if st == nil {
		return nil, errors.New("hook: nil state")
	}
	sc, dropped := TraceParent(st, o.Getenv)
	for _, err := range dropped {
		o.Log.WithError(err).WithField("id", st.ID).Warn("trace context dropped")
	}
	tp := telemetry.FormatTraceParent(sc)
	if sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	ctx, span := o.Tracer.Start(ctx, "fuseguard.hook."+string(stage), trace.WithAttributes(
		telemetry.ContainerID(st.ID),
		telemetry.ProcessPID(st.Pid),
		telemetry.Stage(string(stage)),
	))
	defer span.End()
	// The record keeps this span's own context, for the kill to link to;
	// with tracing off it is the caller's (the noop span carries it).
	if own := telemetry.TraceParent(ctx); own != "" {
		tp = own
	}

	var (
		rec *record.Record
		err error
	)
	if err = ctx.Err(); err == nil {
		switch stage {
		case oci.CreateRuntime, oci.Poststart:
			rec, err = recordInit(ctx, o, st, tp)
		case oci.Poststop:
			err = o.Store.Remove(st.ID)
		}
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return nil, fmt.Errorf("hook %s %s: %w", stage, st.ID, err)
	}
	return rec, nil
}

// TraceParent is the trace context the container was started under: the
// OCI annotation an executor sets, else TRACEPARENT in the environment
// (runc gives a hook only the env of its config entry, where the runtime
// wrapper puts it). The zero SpanContext when neither holds a valid one;
// dropped says why each value that was there was not used.
//
// Whoever creates the container writes its annotations, so a value is
// only ever used parsed (telemetry.ParseTraceParent) and stored
// re-formatted from the SpanContext, never as given.
func TraceParent(st *specs.State, getenv func(string) string) (sc trace.SpanContext, dropped []error) {
	for _, c := range []struct{ from, value string }{
		{"annotation " + telemetry.AnnotationTraceParent, st.Annotations[telemetry.AnnotationTraceParent]},
		{"$" + telemetry.EnvTraceParent, getenv(telemetry.EnvTraceParent)},
	} {
		if c.value == "" {
			continue
		}
		sc, err := telemetry.ParseTraceParent(c.value)
		if err == nil {
			return sc, dropped
		}
		dropped = append(dropped, fmt.Errorf("%s: %w", c.from, err))
	}
	return trace.SpanContext{}, dropped
}

// recordInit observes init and saves the record, merged into the one already
// there for the same init: a connection once recorded is never forgotten
// (a task stuck in an exit-time flush may still wait on it).
func recordInit(ctx context.Context, o Options, st *specs.State, tp string) (*record.Record, error) {
	now := o.Now()
	rec, err := record.NewRecord(o.Proc, st.ID, st.Pid, now)
	if err != nil {
		return nil, err
	}
	rec.Bundle = st.Bundle
	rec.TraceParent = tp
	// The pod UID is annotation text that whoever created the container
	// wrote: kept only in its strict form, else the container belongs to
	// no pod (its connections are never dedicated).
	if uid, err := fuseconn.PodUIDFromAnnotations(st.Annotations); err != nil {
		o.Log.WithError(err).WithField("id", st.ID).Warn("pod UID annotation refused: the container's connections cannot be dedicated to its pod")
	} else {
		rec.PodUID = uid
	}
	for _, c := range rec.Connections {
		if c.OwnershipUnknown != "" {
			o.Log.WithFields(logrus.Fields{"id": st.ID, "conn": c.Conn, "fs_type": c.FSType, "mount_point": c.MountPoint, "why": c.OwnershipUnknown}).
				Warn("FUSE connection recorded with unknown ownership: it will not be aborted as the container's")
		}
	}

	old, err := o.Store.Load(st.ID)
	switch {
	case err == nil && old.InitPID == rec.InitPID && old.InitStartTime == rec.InitStartTime:
		rec = refresh(old, rec, now)
	case err == nil:
		// Same id, another init: the container was created anew.
		o.Log.WithFields(logrus.Fields{"id": st.ID, "old_pid": old.InitPID, "pid": rec.InitPID}).
			Info("replacing the record of a previous init")
	case errors.Is(err, record.ErrNoRecord):
	default:
		// A record this build cannot read must not stop the container.
		o.Log.WithError(err).WithField("id", st.ID).Warn("overwriting an unreadable record")
	}
	if err := save(ctx, o, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// refresh merges what was observed now into old.
func refresh(old, now *record.Record, t time.Time) *record.Record {
	conns := make([]fuseconn.Connection, 0, len(now.Connections))
	for _, c := range now.Connections {
		conns = append(conns, c.Connection)
	}
	old.Merge(conns, t)
	old.PidNS, old.MntNS, old.Cgroup = now.PidNS, now.MntNS, now.Cgroup
	if now.Bundle != "" {
		old.Bundle = now.Bundle
	}
	if now.TraceParent != "" {
		old.TraceParent = now.TraceParent
	}
	if now.PodUID != "" {
		old.PodUID = now.PodUID
	}
	old.Updated = t
	return old
}

func save(ctx context.Context, o Options, rec *record.Record) error {
	owned := 0
	for _, c := range rec.Connections {
		if c.Owned {
			owned++
		}
	}
	_, span := o.Tracer.Start(ctx, "fuseguard.record.save", trace.WithAttributes(
		telemetry.ContainerID(rec.ID),
		telemetry.ProcessPID(rec.InitPID),
		telemetry.Connections(len(rec.Connections)),
		telemetry.OwnedConnections(owned),
	))
	defer span.End()
	if err := o.Store.Save(rec); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	return nil
}
