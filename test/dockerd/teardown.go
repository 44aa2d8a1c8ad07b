package dockerd

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/teardown"
)

// Deadlines of the teardown steps. A wedged container makes Docker spend
// about 12 s on a kill before it gives up; nothing here waits on a single
// step for much longer.
const (
	hookTimeout     = 10 * time.Second
	removeTimeout   = 20 * time.Second
	stopTimeout     = 15 * time.Second
	killWaitTimeout = 5 * time.Second
	rmdirTimeout    = 20 * time.Second
)

// teardown stops the daemon and removes every trace of it. It never
// blocks past the sum of its step deadlines: a step that runs out of time
// is reported and the next, harsher one runs.
func (d *Daemon) teardown(t testing.TB) {
	begin := time.Now()
	d.runHooks(t)
	if d.cmd != nil && d.cmd.Process != nil {
		d.abortOwnedFUSE(t)
		if !d.hasExited() {
			d.removeContainers(t)
		}
		d.closeClient()
		d.stopDaemon(t)
		d.killLeftovers(t)
	}
	teardown.UnmountBelow(t, "dockerd teardown", d.Dir)
	teardown.RemoveDir(t, "dockerd teardown", d.Dir, rmdirTimeout)
	t.Logf("dockerd teardown took %v", time.Since(begin).Round(time.Millisecond))
}

// runHooks runs the OnCleanup functions, newest first, each bounded.
func (d *Daemon) runHooks(t testing.TB) {
	d.mu.Lock()
	hooks := slices.Clone(d.cleanups)
	d.cleanups = nil
	d.mu.Unlock()
	teardown.Hooks(t, "dockerd teardown", hooks, hookTimeout)
}

// abortOwnedFUSE aborts the FUSE connections of every process in our
// containers, except those also mounted in the test's own namespace (a
// host mount bind-mounted into a container is not the container's). A
// container wedged in FUSE can then die and be removed.
func (d *Daemon) abortOwnedFUSE(t testing.TB) {
	pids, err := d.ContainerProcesses()
	if err != nil {
		t.Logf("dockerd teardown: listing container processes: %v", err)
		return
	}
	if len(pids) == 0 {
		return
	}
	conns, err := OwnedFUSEConns(pids...)
	if err != nil {
		t.Logf("dockerd teardown: FUSE connections of %v: %v", pids, err)
		return
	}
	if len(conns) == 0 {
		return
	}
	t.Logf("dockerd teardown: aborting FUSE connections %v of container processes", conns)
	if err := AbortFUSE(conns...); err != nil {
		t.Logf("dockerd teardown: %v", err)
	}
}

// removeContainers force-removes every container, in parallel, within
// removeTimeout.
func (d *Daemon) removeContainers(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	list, err := d.Client().ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		t.Logf("dockerd teardown: listing containers: %v", err)
		return
	}
	var wg sync.WaitGroup
	for _, c := range list {
		wg.Go(func() {
			err := d.Client().ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil {
				t.Logf("dockerd teardown: removing %.12s: %v", c.ID, err)
			}
		})
	}
	wg.Wait()
}

func (d *Daemon) hasExited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

func (d *Daemon) closeClient() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client != nil {
		d.client.Close()
		d.client = nil
	}
}

// stopDaemon sends SIGTERM, and SIGKILL when dockerd has not exited
// after stopTimeout.
func (d *Daemon) stopDaemon(t testing.TB) {
	teardown.Stop(t, "dockerd teardown: dockerd", d.cmd.Process, d.exited, stopTimeout, killWaitTimeout)
}

// killLeftovers kills our containerd, our shims and whatever still runs
// below them, after aborting the FUSE connections that could keep those
// processes from dying.
func (d *Daemon) killLeftovers(t testing.TB) {
	teardown.KillAll(t, "dockerd teardown", d.leftovers, func() { d.abortOwnedFUSE(t) }, killWaitTimeout)
}

// leftovers lists our containerd, our shims and their descendants.
func (d *Daemon) leftovers() []int {
	p := proc.NewFS("")
	pt, err := readProcTable(p)
	if err != nil {
		return nil
	}
	left, _ := p.Descendants(append(d.containerds(p, pt), d.shims(p, pt)...)...)
	return left
}
