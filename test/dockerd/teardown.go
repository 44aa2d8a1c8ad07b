package dockerd

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/teardown"
)

// teardown stops the daemon and removes every trace of it. It never
// blocks past the sum of its step deadlines: a step that runs out of time
// is reported and the next, harsher one runs.
func (d *Daemon) teardown(t testing.TB) {
	plan := teardown.Plan{
		What: "dockerd teardown", Dir: d.Dir, Hooks: d.cleanups.Take(), Exited: d.exited,
		AbortFUSE:  func() { AbortContainersFUSE(t, "dockerd teardown", d.ContainerProcesses) },
		Remove:     func() { d.removeContainers(t) },
		BeforeStop: d.closeClient,
		Leftovers:  d.leftovers,

		// A wedged container makes Docker spend about 12 s on a kill before
		// it gives up; no single step waits for much longer.
		HookTimeout: 10 * time.Second, StopTimeout: 15 * time.Second, KillWaitTimeout: 5 * time.Second, RmdirTimeout: 20 * time.Second,
	}
	if d.cmd != nil {
		plan.Process = d.cmd.Process
	}
	teardown.Run(t, plan)
}

// removeContainers force-removes every container, in parallel, within
// 20 * time.Second.
func (d *Daemon) removeContainers(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
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

func (d *Daemon) closeClient() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client != nil {
		d.client.Close()
		d.client = nil
	}
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
