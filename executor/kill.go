package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/killer"
)

// Kill SIGKILLs the container and makes sure it dies, within Bound (an
// enforced deadline) even when dockerd itself is frozen: a bounded inspect
// names init (else the fuseguard record does); a bounded ContainerKill sends SIGKILL (else a
// pidfd does); killer.Kill verifies the exit and, when init is stuck,
// aborts the container's FUSE connections and verifies again; a bounded
// inspect then waits for Docker to agree.
//
// The Report's Outcome says what became of the processes. The error is
// nil when they are gone (or were not running) and Docker agrees. It wraps
// ErrDockerNoAnswer when the processes are gone but Docker did not answer
// (so its view may lag), killer.ErrStillStuck when init survived the
// rescue, ErrNoContainer, killer.ErrNoInit, or the context's error when ctx ended
// first (context.DeadlineExceeded when Bound passed: Outcome is then
// unknown).
func (k *Killer) Kill(ctx context.Context, containerID string) (Report, error) {
	ctx, cancel := context.WithDeadline(ctx, time.Now().Add(k.Bound()))
	defer cancel()
	r := k.newRun(ctx, "kill", containerID)
	err := r.kill(containerID)
	if err != nil {
		err = fmt.Errorf("executor: kill %s: %w", shortID(r.rep.ContainerID), err)
	}
	return r.finish(err)
}

func (r *run) kill(id string) error {
	tg, err := r.resolve(id)
	if err != nil || r.rep.Outcome == killer.OutcomeAlreadyGone {
		return err
	}
	return r.killTarget(tg)
}

// killTarget is Kill once init is known: SIGKILL, verify and rescue,
// confirm.
func (r *run) killTarget(tg target) error {
	dockerKilled := false
	if r.dockerDown == nil {
		err := r.dockerSignal(StageDockerKill, "kill", "KILL")
		switch {
		case r.ctx.Err() != nil:
			return err
		case err == nil:
			// Docker answers a SIGKILL only once it saw the container stop.
			dockerKilled = true
			r.rep.DockerConfirmed = true
		case errors.Is(err, ErrDockerNoAnswer):
			// Docker answered the inspect, so it is most likely waiting
			// for an exit that a stuck init never delivers.
			r.note("docker kill did not return within %v; SIGKILL through a pidfd", r.k.dockerTimeout())
		default:
			r.note("docker kill failed; SIGKILL through a pidfd: %v", err)
		}
	} else {
		r.note("docker kill skipped: Docker did not answer the inspect; SIGKILL through a pidfd")
	}

	if err := r.rescue(tg, dockerKilled); err != nil {
		return err
	}
	r.confirm()
	return r.dockerErr()
}

// rescue runs killer.Kill: SIGKILL through a pidfd unless Docker already
// killed, then the bounded verify, diagnosis, abort and re-verify.
func (r *run) rescue(tg target, dockerKilled bool) error {
	opts := r.k.Options
	opts.VerifyOnly = dockerKilled
	opts.Record = tg.rec
	if opts.Log == nil {
		opts.Log = r.k.log()
	}
	if opts.Tracer == nil {
		opts.Tracer = r.k.tracer()
	}
	name := StagePidfdKill
	if dockerKilled {
		name = StageVerify
	}
	var rep killer.Report
	err := r.stage(name, func(ctx context.Context, span trace.Span) error {
		var err error
		rep, err = killer.Kill(ctx, r.rep.Target, opts)
		span.SetAttributes(telemetry.Outcome(string(rep.Outcome)), telemetry.Aborted(len(rep.Aborted)))
		return err
	})
	r.rep.Rescue = &rep
	if rep.Target.StartTime != 0 {
		r.rep.Target.StartTime = rep.Target.StartTime
	}
	r.rep.Outcome = rep.Outcome
	if r.ctx.Err() != nil {
		r.rep.Outcome = OutcomeUnknown // cut short, not found stuck
	}
	seenAlive := r.rep.PIDFrom == "docker" || dockerKilled
	switch {
	case rep.Outcome == killer.OutcomeAlreadyGone && seenAlive:
		// Docker had it running a moment ago: it died of this kill (or
		// just before it), and was reaped before killer.Kill looked.
		r.rep.Outcome = killer.OutcomeExited
	case errors.Is(err, killer.ErrStaleTarget):
		// The pid was reaped and reused: init is gone.
		r.rep.Outcome = killer.OutcomeExited
		if !seenAlive {
			r.rep.Outcome = killer.OutcomeAlreadyGone
		}
		r.note("init pid %d was reused: %v", r.rep.Target.PID, err)
		return nil
	}
	return err
}

// confirm waits, within one DockerTimeout, for Docker to say that the
// container no longer runs. It is skipped when Docker already said so, or
// did not answer before.
func (r *run) confirm() {
	if r.rep.DockerConfirmed || r.dockerDown != nil {
		return
	}
	switch r.rep.Outcome {
	case killer.OutcomeExited, killer.OutcomeRecovered, killer.OutcomeAlreadyGone:
	default:
		return
	}
	var polls int
	err := r.stage(StageConfirm, func(ctx context.Context, span trace.Span) error {
		defer func() { span.SetAttributes(telemetry.DockerInspects(polls)) }()
		return dockerCall(ctx, r.k.dockerTimeout(), "inspect", func(ctx context.Context) error {
			for {
				polls++
				c, err := r.k.Docker.ContainerInspect(ctx, r.rep.ContainerID)
				if err != nil {
					return err
				}
				if c.ContainerJSONBase == nil || c.State == nil || !c.State.Running {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("still %s: %w", c.State.Status, ctx.Err())
				case <-time.After(confirmInterval):
				}
			}
		})
	})
	switch {
	case err == nil, errors.Is(err, ErrNoContainer):
		r.rep.DockerConfirmed = true // removed (docker run --rm) is stopped too
	case r.ctx.Err() == nil:
		r.dockerDown = err
	}
}

// dockerErr is the error of a call whose processes are gone but whose
// Docker did not answer.
func (r *run) dockerErr() error {
	if r.dockerDown == nil || r.rep.DockerConfirmed {
		return nil
	}
	return fmt.Errorf("init %d %s, but Docker cannot confirm: %w", r.rep.Target.PID, r.rep.Outcome, r.dockerDown)
}

// dockerSignal sends sig to the container through Docker, as one step under
// its own deadline; op names the call in errors.
func (r *run) dockerSignal(step, op, sig string) error {
	return r.stage(step, func(ctx context.Context, _ trace.Span) error {
		return dockerCall(ctx, r.k.dockerTimeout(), op, func(ctx context.Context) error {
			return r.k.Docker.ContainerKill(ctx, r.rep.ContainerID, sig)
		})
	})
}
