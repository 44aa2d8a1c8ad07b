package main

import (
	"context"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/internal/watch"
)

// envWatcher set to 0 or false stops the hook from starting the node
// watcher (also `fuseguard hook --no-watcher`). The runtime wrapper
// forwards it to the hooks it injects.
const envWatcher = "FUSEGUARD_WATCHER"

// watcherSpawnTimeout bounds the hook's start of the watcher, which takes
// its lock within tens of milliseconds: a container must not wait longer
// for a watcher that does not come up.
const watcherSpawnTimeout = time.Second

// watcherWanted reports whether the hook should start the watcher: on
// unless --no-watcher or $FUSEGUARD_WATCHER says otherwise.
func watcherWanted(a *app, noWatcher bool, log logrus.FieldLogger) bool {
	if noWatcher {
		return false
	}
	v := a.getenv(envWatcher)
	if v == "" {
		return true
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		log.WithField(envWatcher, v).Warn("not a boolean; starting the watcher (the default)")
		return true
	}
	return on
}

// ensureWatcher starts `fuseguard watch` on stateDir when no watcher holds
// its lock, so that registering the runtime is all a Docker user has to do
// (a systemd unit is the better home; the hook then finds it running).
// The watcher runs detached (own session, working directory /, stdin
// /dev/null, output to watch.log): it holds none of the runtime's pipes,
// which runc and the shim would otherwise wait on. Fail open and bounded:
// an error is logged, never returned.
// configFile, when not "", is passed on as the watcher's --config.
func ensureWatcher(ctx context.Context, stateDir, configFile string, log logrus.FieldLogger) {
	if ctx.Err() != nil {
		log.WithError(ctx.Err()).Warn("hook out of time: not starting the node watcher")
		return
	}
	bin, err := fullBinary()
	if err != nil {
		log.WithError(err).Warn("cannot start the node watcher: fuseguard binary unknown")
		return
	}
	if err := cloexecInherited(); err != nil {
		log.WithError(err).Warn("cannot start the node watcher: inherited descriptors")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, watcherSpawnTimeout)
	defer cancel()
	args := []string{"--log-format", "json"}
	if configFile != "" {
		args = append(args, "--config", configFile)
	}
	pid, started, err := watch.Spawn(ctx, bin, stateDir, args...)
	log = log.WithField("watcher_pid", pid)
	switch {
	case err != nil:
		log.WithError(err).Warn("cannot start the node watcher (fail open)")
	case started:
		log.Info("started the node watcher")
	default:
		log.Debug("node watcher already running")
	}
}

// cloexecInherited marks every descriptor above stderr close-on-exec. Go
// opens its own that way, but the hook may inherit others from the runtime
// (or whatever started it) without the flag; the long-lived watcher must
// not keep them open, or a reader of such a pipe never sees its end. The
// hook is about to exit, so the flag changes nothing else.
func cloexecInherited() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Kernels before 5.11: one descriptor at a time.
	ents, rerr := os.ReadDir("/proc/self/fd")
	if rerr != nil {
		return rerr
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}
