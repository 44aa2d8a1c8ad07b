package dockerd

import (
	"context"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/proc"
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
	d.unmountAll(t)
	d.removeDir(t)
	t.Logf("dockerd teardown took %v", time.Since(begin).Round(time.Millisecond))
}

// runHooks runs the OnCleanup functions, newest first, each bounded: one
// that hangs is abandoned so that the harsher steps still run.
func (d *Daemon) runHooks(t testing.TB) {
	d.mu.Lock()
	hooks := slices.Clone(d.cleanups)
	d.cleanups = nil
	d.mu.Unlock()
	for i := len(hooks) - 1; i >= 0; i-- {
		done := make(chan struct{})
		go func() {
			defer close(done)
			hooks[i]()
		}()
		select {
		case <-done:
		case <-time.After(hookTimeout):
			t.Errorf("dockerd teardown: an OnCleanup hook did not return within %v; abandoned", hookTimeout)
		}
	}
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
	conns, err := FUSEConns(pids...)
	if err != nil {
		t.Logf("dockerd teardown: FUSE connections of %v: %v", pids, err)
		return
	}
	host := hostFUSEConns()
	conns = slices.DeleteFunc(conns, func(id uint32) bool { return host[id] })
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

// stopDaemon sends SIGTERM, and SIGKILL when dockerd has not exited after
// stopTimeout.
func (d *Daemon) stopDaemon(t testing.TB) {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return
	case <-time.After(stopTimeout):
	}
	t.Logf("dockerd teardown: dockerd %d ignored SIGTERM for %v; SIGKILL\n%s", d.Pid, stopTimeout, d.LogTail(20))
	_ = d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(killWaitTimeout):
		t.Errorf("dockerd teardown: dockerd %d survived SIGKILL for %v", d.Pid, killWaitTimeout)
	}
}

// killLeftovers kills our containerd, our shims and whatever still runs
// below them, after aborting the FUSE connections that could keep those
// processes from dying.
func (d *Daemon) killLeftovers(t testing.TB) {
	left := d.leftovers()
	if len(left) == 0 {
		return
	}
	t.Logf("dockerd teardown: killing leftover processes %v", left)
	d.abortOwnedFUSE(t)
	for _, pid := range left {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	deadline := time.Now().Add(killWaitTimeout)
	for time.Now().Before(deadline) {
		if left = d.leftovers(); len(left) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("dockerd teardown: processes %v survived SIGKILL for %v", left, killWaitTimeout)
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

// unmountAll lazily unmounts everything mounted below our directory.
func (d *Daemon) unmountAll(t testing.TB) {
	if err := UnmountBelow(d.Dir); err != nil {
		t.Errorf("dockerd teardown: %v", err)
	}
}

// removeDir removes our directory within rmdirTimeout.
func (d *Daemon) removeDir(t testing.TB) {
	if err := RemoveDir(d.Dir, rmdirTimeout); err != nil {
		t.Errorf("dockerd teardown: %v", err)
	}
}
