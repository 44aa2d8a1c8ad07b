package cri

import (
	"context"
	"errors"
	"os"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/dockerd"
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
	d.unmountAll(t)
	d.removeDir(t)
	t.Logf("containerd teardown took %v", time.Since(begin).Round(time.Millisecond))
}

// runHooks runs the OnCleanup functions, newest first, each bounded.
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
			t.Errorf("containerd teardown: an OnCleanup hook did not return within %v; abandoned", hookTimeout)
		}
	}
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
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return
	case <-time.After(stopTimeout):
	}
	t.Logf("containerd teardown: containerd %d ignored SIGTERM for %v; SIGKILL", d.Pid, stopTimeout)
	_ = d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(killWaitTimeout):
		t.Errorf("containerd teardown: containerd %d survived SIGKILL for %v", d.Pid, killWaitTimeout)
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

// killLeftovers kills our shims and whatever still runs below them, after
// aborting the FUSE connections that could keep those from dying.
func (d *Daemon) killLeftovers(t testing.TB) {
	left := d.leftovers()
	if len(left) == 0 {
		return
	}
	t.Logf("containerd teardown: killing leftover processes %v", left)
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
	t.Errorf("containerd teardown: processes %v survived SIGKILL for %v", left, killWaitTimeout)
}

// unmountAll lazily unmounts everything mounted below our directory,
// deepest first.
func (d *Daemon) unmountAll(t testing.TB) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(d.Dir))
	if err != nil {
		t.Logf("containerd teardown: reading mounts: %v", err)
		return
	}
	sort.Slice(infos, func(i, j int) bool { return len(infos[i].Mountpoint) > len(infos[j].Mountpoint) })
	for _, m := range infos {
		err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("containerd teardown: unmount %s: %v", m.Mountpoint, err)
		}
	}
}

// removeDir removes our directory within rmdirTimeout.
func (d *Daemon) removeDir(t testing.TB) {
	done := make(chan error, 1)
	go func() { done <- os.RemoveAll(d.Dir) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("containerd teardown: %v", err)
		}
	case <-time.After(rmdirTimeout):
		t.Errorf("containerd teardown: removing %s did not finish within %v", d.Dir, rmdirTimeout)
	}
}
