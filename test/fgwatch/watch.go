// Package fgwatch starts and stops the fuseguard node watcher binary for
// tests that run it as a separate process (Docker, podman, hooks).
package fgwatch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/fgcmd"
)

// watcherLockTimeout bounds the wait for a new watcher to take its lock;
// it does within tens of milliseconds.
const watcherLockTimeout = 5 * time.Second

// StartWatcher runs `fuseguard watch --state-dir dir --log-format json
// args…` as the test's child in its own session, logging to logName in dir,
// and returns its pid once it holds dir's lock. It is stopped (TERM, then
// KILL) and reaped at cleanup.
func StartWatcher(t testing.TB, dir, logName string, args ...string) int {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(fgcmd.Binary(t), append([]string{"watch", "--state-dir", dir, "--log-format", "json"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(watch.DefaultShutdown + time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(watcherLockTimeout)
	for {
		pid, err := watch.Holder(dir)
		if err == nil && pid == cmd.Process.Pid {
			return pid
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(dir, logName))
			t.Fatalf("watcher exited before it held %s:\n%s", dir, b)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher %d does not hold %s after %v (holder %d, %v)", cmd.Process.Pid, dir, watcherLockTimeout, pid, err)
		}
	}
}

// StopWatcher stops whatever watcher holds dir's lock (one a hook
// started): TERM, then KILL, bounded. Such a watcher is not the test's
// child (a subreaper or init reaps it), so it waits for the pid to go or
// turn zombie.
func StopWatcher(t testing.TB, dir string) {
	pid, err := watch.Holder(dir)
	if err != nil || pid <= 0 {
		return
	}
	p := proc.NewFS("")
	st, err := p.Stat(context.Background(), pid)
	if err != nil {
		return
	}
	gone := func() bool {
		now, err := p.Stat(context.Background(), pid)
		return err != nil || now.StartTime != st.StartTime || now.State == "Z"
	}
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		_ = unix.Kill(pid, sig)
		deadline := time.Now().Add(watch.DefaultShutdown + time.Second)
		for time.Now().Before(deadline) {
			if gone() {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Errorf("watcher %d of %s survived SIGKILL", pid, dir)
}
