package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/killer"
)

// Stop is an executor's shutdown of a task: SIGTERM through a bounded
// ContainerKill (through a pidfd when Docker does not answer), a wait of
// up to grace for init to exit, watched on init's pidfd so that a frozen
// dockerd cannot stretch it, and then Kill. It returns within
// StopBound(grace), an enforced deadline: grace plus one DockerTimeout
// longer than Kill's Bound. Report and error are as for
// Kill; Outcome exited means the task ended within its grace or after the
// SIGKILL.
func (k *Killer) Stop(ctx context.Context, containerID string, grace time.Duration) (Report, error) {
	ctx, cancel := context.WithDeadline(ctx, time.Now().Add(k.StopBound(grace)))
	defer cancel()
	r := k.newRun(ctx, "stop", containerID)
	r.span.SetAttributes(telemetry.Grace(grace))
	err := r.stop(containerID, grace)
	if err != nil {
		err = fmt.Errorf("executor: stop %s: %w", shortID(r.rep.ContainerID), err)
	}
	return r.finish(err)
}

func (r *run) stop(id string, grace time.Duration) error {
	tg, err := r.resolve(id)
	if err != nil || r.rep.Outcome == killer.OutcomeAlreadyGone {
		return err
	}
	// The start time's read is one task read (it sleeps behind an init
	// inside execve): its own short deadline, within Stop's.
	openCtx, cancel := context.WithTimeout(r.ctx, r.k.Options.ReadTimeout())
	pr, err := killer.Open(openCtx, r.k.proc(), r.rep.Target)
	cancel()
	if errors.Is(err, killer.ErrNoTarget) || errors.Is(err, killer.ErrStaleTarget) {
		// Gone since the inspect (or since the record was written).
		r.rep.Outcome = killer.OutcomeAlreadyGone
		if r.rep.PIDFrom == "docker" {
			r.rep.Outcome = killer.OutcomeExited
		}
		r.note("init %d gone before SIGTERM: %v", r.rep.Target.PID, err)
		r.confirm()
		return r.dockerErr()
	}
	if err != nil {
		// Without a pidfd there is nothing to wait on: kill at once.
		r.note("cannot hold init %d (%v): skipping the grace", r.rep.Target.PID, err)
		return r.killTarget(tg)
	}
	defer pr.Close()

	if r.dockerDown == nil {
		err := r.dockerSignal(StageDockerTerm, "kill -s TERM", "TERM")
		switch {
		case r.ctx.Err() != nil:
			return err
		case errors.Is(err, ErrDockerNoAnswer):
			// Docker answers a SIGTERM as soon as it is sent: it is stuck.
			r.dockerDown = err
		case err != nil:
			r.note("docker kill -s TERM failed: %v", err)
		}
	}
	if r.dockerDown != nil {
		err := r.stage(StagePidfdTerm, func(context.Context, trace.Span) error { return pr.Signal(unix.SIGTERM) })
		if err != nil {
			r.note("no SIGTERM sent: %v", err)
		}
	}

	var exited bool
	err = r.stage(StageGrace, func(ctx context.Context, span trace.Span) error {
		var err error
		exited, err = pr.Wait(ctx, grace)
		span.SetAttributes(telemetry.ExecutorExited(exited))
		return err
	})
	if err != nil {
		return err
	}
	if exited {
		r.rep.Outcome = killer.OutcomeExited
		r.confirm()
		return r.dockerErr()
	}
	r.note("init %d still running after the %v grace: SIGKILL", r.rep.Target.PID, grace)
	return r.killTarget(tg)
}
