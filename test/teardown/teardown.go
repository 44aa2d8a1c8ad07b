// Package teardown holds the bounded steps with which the test harnesses
// (test/dockerd, test/cri) tear down a private daemon they started: the
// daemon may hang on a container wedged in FUSE, so every step has a
// deadline, and a step that runs out of time is reported and the next,
// harsher one runs. what prefixes every message ("dockerd teardown").
package teardown

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Hooks runs hooks newest first, each bounded by timeout: one that hangs is
// abandoned so that the harsher steps still run.
func Hooks(t testing.TB, what string, hooks []func(), timeout time.Duration) {
	for i := len(hooks) - 1; i >= 0; i-- {
		done := make(chan struct{})
		go func() {
			defer close(done)
			hooks[i]()
		}()
		select {
		case <-done:
		case <-time.After(timeout):
			t.Errorf("%s: a cleanup hook did not return within %v; abandoned", what, timeout)
		}
	}
}

// Stop sends p SIGTERM and, when exited is not closed after termWait,
// SIGKILL; it reports p surviving that for killWait.
func Stop(t testing.TB, what string, p *os.Process, exited <-chan struct{}, termWait, killWait time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(termWait):
	}
	t.Logf("%s: %d ignored SIGTERM for %v; SIGKILL", what, p.Pid, termWait)
	_ = p.Kill()
	select {
	case <-exited:
	case <-time.After(killWait):
		t.Errorf("%s: %d survived SIGKILL for %v", what, p.Pid, killWait)
	}
}

// KillAll kills the processes that list returns, after before (which
// aborts what could keep them from dying), and reports those still there
// after wait.
func KillAll(t testing.TB, what string, list func() []int, before func(), wait time.Duration) {
	left := list()
	if len(left) == 0 {
		return
	}
	t.Logf("%s: killing leftover processes %v", what, left)
	before()
	for _, pid := range left {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if left = list(); len(left) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("%s: processes %v survived SIGKILL for %v", what, left, wait)
}

// MountsBelow returns the mount points below dir in the caller's mount
// table, deepest first.
func MountsBelow(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// UnmountBelow lazily unmounts everything mounted below dir, deepest
// first. Lazy, because a mount may still be busy.
func UnmountBelow(t testing.TB, what, dir string) {
	mounts, err := MountsBelow(dir)
	if err != nil {
		t.Logf("%s: reading mounts: %v", what, err)
		return
	}
	for _, m := range mounts {
		err := unix.Unmount(m, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("%s: unmount %s: %v", what, m, err)
		}
	}
}

// RemoveDir removes dir within timeout; a removal that hangs is abandoned
// and reported.
func RemoveDir(t testing.TB, what, dir string, timeout time.Duration) {
	done := make(chan error, 1)
	go func() { done <- os.RemoveAll(dir) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(timeout):
		t.Errorf("%s: removing %s did not finish within %v", what, dir, timeout)
	}
}

// LogTail returns the last n lines of the log file at path.
func LogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Plan is one private daemon's teardown: what differs between harnesses.
// Run takes the steps in order — hooks, abort the containers' FUSE
// connections, remove the containers (while the daemon still runs), stop
// the daemon, kill what is left, unmount and remove Dir — each bounded.
type Plan struct {
	What    string      // prefixes every message: "dockerd teardown"
	Dir     string      // the daemon's private directory, removed last
	Hooks   []func()    // the tests' cleanups, run newest first
	Process *os.Process // the daemon; nil if it never started
	// Exited is closed when the daemon has exited.
	Exited <-chan struct{}
	// AbortFUSE aborts the FUSE connections that keep containers from dying.
	AbortFUSE func()
	// Remove removes the daemon's containers, through the daemon.
	Remove func()
	// BeforeStop runs just before the daemon is stopped (close clients).
	BeforeStop func()
	// Leftovers lists the daemon's helpers and their descendants.
	Leftovers func() []int

	HookTimeout, StopTimeout, KillWaitTimeout, RmdirTimeout time.Duration
}

// Run tears p down, never blocking past the sum of its step deadlines.
func Run(t testing.TB, p Plan) {
	begin := time.Now()
	Hooks(t, p.What, p.Hooks, p.HookTimeout)
	if p.Process != nil {
		p.AbortFUSE()
		select {
		case <-p.Exited:
		default:
			p.Remove()
		}
		if p.BeforeStop != nil {
			p.BeforeStop()
		}
		Stop(t, p.What, p.Process, p.Exited, p.StopTimeout, p.KillWaitTimeout)
		KillAll(t, p.What, p.Leftovers, p.AbortFUSE, p.KillWaitTimeout)
	}
	UnmountBelow(t, p.What, p.Dir)
	RemoveDir(t, p.What, p.Dir, p.RmdirTimeout)
	t.Logf("%s took %v", p.What, time.Since(begin).Round(time.Millisecond))
}

// Cleanups is the tests' cleanup functions of one daemon, safe for
// concurrent use; its zero value is empty.
type Cleanups struct {
	mu    sync.Mutex
	funcs []func()
}

// Add registers f.
func (c *Cleanups) Add(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.funcs = append(c.funcs, f)
}

// Take returns the functions registered so far and forgets them.
func (c *Cleanups) Take() []func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	funcs := c.funcs
	c.funcs = nil
	return funcs
}
