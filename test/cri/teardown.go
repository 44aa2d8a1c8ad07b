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

// teardown stops the daemon and removes every trace of it, never blocking
// past the sum of its step deadlines.
func (d *Daemon) teardown(t testing.TB) {
	plan := teardown.Plan{
		What: "containerd teardown", Dir: d.Dir, Hooks: d.cleanups.Take(), Exited: d.exited,
		AbortFUSE: func() { dockerd.AbortContainersFUSE(t, "containerd teardown", d.ContainerProcesses) },
		Remove:    func() { d.removePods(t) },
		Leftovers: d.leftovers,

		HookTimeout: 10 * time.Second, StopTimeout: 10 * time.Second, KillWaitTimeout: 5 * time.Second, RmdirTimeout: 20 * time.Second,
	}
	if d.cmd != nil {
		plan.Process = d.cmd.Process
	}
	teardown.Run(t, plan)
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

// removePods force-removes every pod sandbox within 30 * time.Second.
func (d *Daemon) removePods(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

// leftovers lists our shims and everything below them.
func (d *Daemon) leftovers() []int {
	shims, err := dockerd.ShimsOf(d.Socket)
	if err != nil || len(shims) == 0 {
		return nil
	}
	left, _ := proc.NewFS("").Descendants(shims...)
	return left
}
