package dockerd

import (
	"context"
	"fmt"
	"time"
)

// State is the part of a container's state the tests look at.
type State struct {
	Status   string // "created", "running", "exited", ...
	Running  bool
	ExitCode int
	Pid      int // init's pid in the host's PID namespace; 0 once stopped
}

// Inspect reads the container's state through the API, bounded by ctx
// (CallTimeout when ctx has no deadline).
func (d *Daemon) Inspect(ctx context.Context, id string) (State, error) {
	ctx, cancel := withDefaultTimeout(ctx, CallTimeout)
	defer cancel()
	c, err := d.Client().ContainerInspect(ctx, id)
	if err != nil {
		return State{}, fmt.Errorf("inspect %.12s: %w", id, err)
	}
	if c.ContainerJSONBase == nil || c.State == nil {
		return State{}, fmt.Errorf("inspect %.12s: no state in the answer", id)
	}
	return State{
		Status:   c.State.Status,
		Running:  c.State.Running,
		ExitCode: c.State.ExitCode,
		Pid:      c.State.Pid,
	}, nil
}

// WaitExited polls Inspect until the container no longer runs or ctx ends
// (CallTimeout when ctx has no deadline), and returns the last state seen.
func (d *Daemon) WaitExited(ctx context.Context, id string) (State, error) {
	ctx, cancel := withDefaultTimeout(ctx, CallTimeout)
	defer cancel()
	for {
		st, err := d.Inspect(ctx, id)
		if err == nil && !st.Running {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("container %.12s still %s: %w", id, st.Status, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
