package wrapper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// target finds the container's init: the record the hooks wrote (with its
// connections, and the start time and cgroup that name init), else the pid of `<runtime> <global flags> state <id>` and
// the start time read now.
func (w *Wrapper) target(ctx context.Context, inv oci.Invocation) (killer.Target, *record.Record, error) {
	rec, err := w.Store.Find(record.Query{ID: inv.ContainerID})
	if err == nil && rec.InitPID > 0 {
		return killer.RecordTarget(rec), rec, nil
	}
	if err != nil && !errors.Is(err, record.ErrNoRecord) {
		w.Log.WithError(err).WithField("id", inv.ContainerID).Warn("unreadable record; asking the runtime")
	}
	if runtimeForgot(inv) {
		return killer.Target{}, nil, fmt.Errorf("%w: the runtime has no container %s", killer.ErrNoInit, inv.ContainerID)
	}
	// The runtime's state and the read of init's start time share one
	// stateTimeout; the read, which sleeps behind an init inside execve,
	// is one task read, as in killer.Kill.
	ctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	pid, err := w.statePID(ctx, inv)
	if err != nil {
		return killer.Target{}, nil, err
	}
	ctx, cancelRead := context.WithTimeout(ctx, w.killerOptions(nil, nil, false).ReadTimeout())
	defer cancelRead()
	st, err := proc.NewFS("").Stat(ctx, pid)
	if err != nil {
		return killer.Target{}, nil, fmt.Errorf("%w: pid %d: %w", killer.ErrNoInit, pid, err)
	}
	return killer.Target{PID: pid, StartTime: st.StartTime}, nil, nil
}

// runtimeState is the part of `runc state` output the wrapper reads.
type runtimeState struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
}

// statePID asks the real runtime for the init pid, bounded by ctx.
func (w *Wrapper) statePID(ctx context.Context, inv oci.Invocation) (int, error) {
	args := append(slices.Clone(inv.GlobalFlags), "state", inv.ContainerID)
	cmd := exec.CommandContext(ctx, w.Runtime, args...)
	cmd.Env = w.Env
	// Killed at ctx's end and reaped by Output; killed by the kernel
	// should the wrapper die first. Output returns once the pipe closes,
	// bounded even if the runtime left a descendant holding it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 100 * time.Millisecond
	runtime.LockOSThread() // see Wrapper.child: the death signal follows this thread
	defer runtime.UnlockOSThread()
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%s state %s: %w", w.Runtime, inv.ContainerID, err)
	}
	var st runtimeState
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("%s state %s: %w", w.Runtime, inv.ContainerID, err)
	}
	if st.Pid <= 0 {
		return 0, fmt.Errorf("%w: %s is %s", killer.ErrNoInit, inv.ContainerID, st.Status)
	}
	return st.Pid, nil
}
