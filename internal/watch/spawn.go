package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/record"
)

// LogName is the log file of a watcher started by Spawn, in the state
// directory.
const LogName = "watch.log"

// defaultSpawnWait bounds Spawn's wait for the new watcher to take the lock
// when ctx has no deadline.
const defaultSpawnWait = 2 * time.Second

// Spawn starts `binary watch --state-dir stateDir [args…]` as a detached
// process (own session, working directory /, stdin /dev/null, logging to
// stateDir/watch.log, size-capped and rotated) unless a watcher already holds the lock, and waits,
// within ctx (2 s when ctx has no deadline), until the new watcher holds it.
//
// It returns the pid of the running watcher and whether this call started
// it. Under a container runtime the new process is reparented to the
// nearest child subreaper (the shim), which reaps it; a systemd unit is the
// better home for the watcher, and Spawn then finds it running.
func Spawn(ctx context.Context, binary, stateDir string, args ...string) (pid int, started bool, err error) {
	if stateDir == "" {
		return 0, false, errors.New("spawn watcher: empty state directory")
	}
	// The watcher runs in /: a relative directory would name another one.
	stateDir, err = filepath.Abs(stateDir)
	if err != nil {
		return 0, false, fmt.Errorf("spawn watcher: %w", err)
	}
	if pid, err := Holder(stateDir); err != nil || pid != 0 {
		return pid, false, err
	}
	if err := record.EnsureStateDir(stateDir); err != nil {
		return 0, false, fmt.Errorf("spawn watcher: %w", err)
	}
	// The watcher logs through a size-capped, rotated LogFile of its own
	// (--log-file); its stdout and stderr, which see only what the Go
	// runtime prints on a crash, are appended to the same file.
	logPath := filepath.Join(stateDir, LogName)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, false, fmt.Errorf("spawn watcher: %s: %w", logPath, err)
	}
	defer logf.Close()
	cmd := exec.Command(binary, append([]string{"watch", "--state-dir", stateDir, "--log-file", logPath}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Not the caller's directory: a hook runs in the container's bundle,
	// which the watcher must not pin.
	cmd.Dir = "/"
	// A long-lived watcher must not put every span of its life under the
	// container start that happened to spawn it: drop the caller's
	// TRACEPARENT (InjectEnv with no span in the context removes it).
	cmd.Env = telemetry.InjectEnv(context.Background(), os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, false, fmt.Errorf("spawn watcher: %w", err)
	}
	child := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultSpawnWait)
		defer cancel()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if h, _ := Holder(stateDir); h == child {
			return child, true, nil
		}
		select {
		case err := <-exited:
			// Lost a race with another watcher, or failed: report the holder.
			if h, herr := Holder(stateDir); herr == nil && h != 0 {
				return h, false, nil
			}
			return 0, false, fmt.Errorf("spawn watcher: %s exited: %v (see %s)", binary, err, filepath.Join(stateDir, LogName))
		case <-ctx.Done():
			return child, true, fmt.Errorf("spawn watcher: pid %d did not take the lock: %w", child, ctx.Err())
		case <-tick.C:
		}
	}
}
