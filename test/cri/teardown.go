package cri

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/teardown"
)

// Deadlines of the teardown steps.
const (
	hookTimeout     = 10 * time.Second
	removeTimeout   = 30 * time.Second
	stopTimeout     = 10 * time.Second
	killWaitTimeout = 5 * time.Second
	rmdirTimeout    = 20 * time.Second
)

// teardown stops the daemon and removes every trace of it, never blocking
// past the sum of its step deadlines.
func (d *Daemon) teardown(t testing.TB) {
	begin := time.Now()
	d.runHooks(t)
	if d.cmd != nil && d.cmd.Process != nil {
		d.abortOwnedFUSE(t)
		if !d.hasExited() {
			d.removePods(t)
		}
		d.stopDaemon(t)
		d.killLeftovers(t)
	}
	teardown.UnmountBelow(t, "containerd teardown", d.Dir)
	teardown.RemoveDir(t, "containerd teardown", d.Dir, rmdirTimeout)
	t.Logf("containerd teardown took %v", time.Since(begin).Round(time.Millisecond))
}

// runHooks runs the OnCleanup functions, newest first, each bounded.
func (d *Daemon) runHooks(t testing.TB) {
	d.mu.Lock()
	hooks := slices.Clone(d.cleanups)
	d.cleanups = nil
	d.mu.Unlock()
	teardown.Hooks(t, "containerd teardown", hooks, hookTimeout)
}

// ContainerProcesses returns the pids of every process below this
// daemon's shims: the pods' containers.
func (d *Daemon) ContainerProcesses() ([]int, error) {
	shims, err := dockerd.ShimsOf(d.Socket)
	if err != nil {
		return nil, err
	}
	pids, err := proc.NewFS("").Descendants(shims...)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(pids, func(pid int) bool { return slices.Contains(shims, pid) }), nil
}

// abortOwnedFUSE aborts the FUSE connections mounted in our containers
// (and not in the test's own namespace), so that wedged ones can die.
func (d *Daemon) abortOwnedFUSE(t testing.TB) {
	pids, err := d.ContainerProcesses()
	if err != nil || len(pids) == 0 {
		return
	}
	conns, err := dockerd.OwnedFUSEConns(pids...)
	if err != nil || len(conns) == 0 {
		return
	}
	t.Logf("containerd teardown: aborting FUSE connections %v of container processes", conns)
	if err := dockerd.AbortFUSE(conns...); err != nil {
		t.Logf("containerd teardown: %v", err)
	}
}

// removePods force-removes every pod sandbox within removeTimeout.
func (d *Daemon) removePods(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	pods, err := d.Pods(ctx)
	if err != nil {
		t.Logf("containerd teardown: listing pods: %v", err)
		return
	}
	if len(pods) == 0 {
		return
	}
	if _, err := d.Crictl(ctx, append([]string{"rmp", "--force"}, pods...)...); err != nil {
		t.Logf("containerd teardown: %v", err)
	}
}

func (d *Daemon) hasExited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// stopDaemon sends SIGTERM, and SIGKILL when containerd has not exited
// after stopTimeout.
func (d *Daemon) stopDaemon(t testing.TB) {
	teardown.Stop(t, "containerd teardown: containerd", d.cmd.Process, d.exited, stopTimeout, killWaitTimeout)
}

// leftovers lists our shims and everything below them.
func (d *Daemon) leftovers() []int {
	shims, err := dockerd.ShimsOf(d.Socket)
	if err != nil || len(shims) == 0 {
		return nil
	}
	left, _ := proc.NewFS("").Descendants(shims...)
	return left
}

// killLeftovers kills our shims and whatever still runs below them, after
// aborting the FUSE connections that could keep those from dying.
func (d *Daemon) killLeftovers(t testing.TB) {
	teardown.KillAll(t, "containerd teardown", d.leftovers, func() { d.abortOwnedFUSE(t) }, killWaitTimeout)
}
