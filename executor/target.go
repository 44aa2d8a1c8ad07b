package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/record"
)

// target is what resolve learnt of the container.
type target struct {
	rec     *record.Record // the record, or a snapshot; nil when neither
	running bool           // Docker said it runs (or Docker did not answer)
}

// resolve finds init's pid: a bounded inspect, else the fuseguard record.
// With Docker answering and no record stored, init is snapshotted before
// any signal: once it is dying its mount table is gone. The error is the
// context's, ErrNoContainer, or killer.ErrNoInit (joined with why Docker failed).
func (r *run) resolve(id string) (target, error) {
	var (
		tg       target
		pid      int
		dockerOK bool
	)
	err := r.stage(StageInspect, func(ctx context.Context, span trace.Span) error {
		return dockerCall(ctx, r.k.dockerTimeout(), "inspect", func(ctx context.Context) error {
			c, err := r.k.Docker.ContainerInspect(ctx, id)
			if err != nil {
				return err
			}
			if c.ContainerJSONBase == nil || c.State == nil {
				return fmt.Errorf("inspect %s: no state in the answer", id)
			}
			dockerOK = true
			r.rep.ContainerID = c.ID
			pid = c.State.Pid
			tg.running = c.State.Running && pid > 0
			span.SetAttributes(telemetry.DockerStatus(string(c.State.Status)), telemetry.ProcessPID(pid))
			return nil
		})
	})
	switch {
	case r.ctx.Err() != nil:
		return tg, errors.Join(err, r.ctx.Err())
	case errors.Is(err, ErrNoContainer):
		return tg, err
	case dockerOK && !tg.running:
		r.rep.Outcome = killer.OutcomeAlreadyGone
		r.rep.DockerConfirmed = true
		return tg, nil
	case err != nil:
		r.dockerDown = err
		tg.running = true // as far as anyone knows
	}

	err = r.stage(StageRecord, func(ctx context.Context, span trace.Span) error {
		rec, how, err := r.record(id, pid, dockerOK)
		span.SetAttributes(telemetry.RecordSource(how))
		if err != nil {
			return err
		}
		tg.rec = rec
		return nil
	})
	if pid == 0 && tg.rec != nil {
		pid = tg.rec.InitPID
		r.rep.ContainerID = tg.rec.ID
		r.rep.PIDFrom = "record"
	} else if pid != 0 {
		r.rep.PIDFrom = "docker"
	}
	r.rep.Target.PID = pid
	if tg.rec != nil && tg.rec.InitPID == pid {
		r.rep.Target = killer.RecordTarget(tg.rec)
	}
	if pid == 0 {
		return tg, fmt.Errorf("%w: %w", killer.ErrNoInit, errors.Join(r.dockerDown, err))
	}
	return tg, nil
}

// record returns the container's record and where it came from: the
// store, a snapshot of the live init, or nothing.
func (r *run) record(id string, pid int, dockerOK bool) (*record.Record, string, error) {
	store := r.k.store()
	if dockerOK {
		id = r.rep.ContainerID
		if rec, err := store.Find(record.Query{ID: id, PID: pid}); err == nil {
			return rec, "store", nil
		}
		// No record, or one of an earlier init: look at this one while
		// it still has its mount table.
		rec, err := record.NewRecord(r.k.proc(), id, pid, time.Now())
		if err != nil {
			r.note("no record and no snapshot of init %d: %v", pid, err)
			return nil, "none", nil // Docker named init: the kill goes on
		}
		return rec, "snapshot", nil
	}
	rec, err := store.Find(record.Query{ID: id, IDPrefix: true})
	if err != nil {
		return nil, "none", err
	}
	r.note("Docker did not answer; init pid %d from the fuseguard record in %s", rec.InitPID, store.Dir)
	return rec, "store", nil
}
