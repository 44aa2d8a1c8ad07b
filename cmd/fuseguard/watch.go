package main

import (
	"context"
	"errors"
	"time"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/metrics"
	"github.com/fuseguard/fuseguard/obs"
	"github.com/fuseguard/fuseguard/telemetry"
	"github.com/fuseguard/fuseguard/watch"
)

// metricsShutdown bounds the wait for scrapes in flight at exit.
const metricsShutdown = 2 * time.Second

// cmdWatch runs the node watcher until SIGTERM or SIGINT.
func cmdWatch(ctx context.Context, a *app, args []string) int {
	fs, format, level := a.flags("watch")
	stateDir := fs.String("state-dir", "", "state directory of the records (default $"+fuseguard.EnvStateDir+" or "+fuseguard.DefaultStateDir+")")
	grace := fs.Duration("grace", watch.DefaultGrace, "how long init may be exiting before the exit counts as stuck")
	check := fs.Duration("check-interval", watch.DefaultCheckInterval, "how often each init's PF_EXITING flag is read")
	rescan := fs.Duration("rescan-interval", watch.DefaultRescanInterval, "safety rescan of the records and mount tables")
	retry := fs.Duration("retry-interval", watch.DefaultRetryInterval, "wait before rescuing a container still stuck again; doubles after each failed rescue")
	maxRetry := fs.Duration("max-retry-interval", watch.DefaultMaxRetryInterval, "cap of the doubling wait between rescues")
	recoverTimeout := fs.Duration("recover-timeout", killer.DefaultRecoverTimeout, "how long to wait for the exit after aborting")
	rescueTimeout := fs.Duration("rescue-timeout", 0, "deadline of one rescue (default: 2 × recover-timeout + 2s)")
	maxRescues := fs.Int("max-rescues", watch.DefaultMaxRescues, "rescues running at once, over all containers")
	mountRead := fs.Duration("mount-read-interval", watch.DefaultMountReadInterval, "shortest time between two reads of one container's mount table")
	maxTracked := fs.Int("max-tracked", watch.DefaultMaxTracked, "records tracked at once; more are logged and shown by status")
	var allowShared stringList
	fs.Var(&allowShared, "allow-shared-fstype", allowSharedUsage)
	dryRun := fs.Bool("dry-run", false, "detect and diagnose, abort nothing")
	logFile := fs.String("log-file", "", "log to this file, size-capped and rotated (default: stderr, e.g. the journal under systemd)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at http://ADDR"+metrics.Path+", e.g. 127.0.0.1:9477 (default: off)")
	if code, ok := a.parse(fs, format, level, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return a.fail(exitUsage, "watch: takes no arguments")
	}
	if *logFile != "" {
		lf, err := obs.OpenLogFile(*logFile, 0, 0)
		if err != nil {
			return a.fail(exitFailure, "watch: %v", err)
		}
		defer lf.Close()
		a.log.SetOutput(lf)
	}
	tp, err := telemetry.New(ctx, telemetry.ConfigFromEnv(a.getenv))
	if err != nil {
		a.log.WithError(err).Warn("tracing disabled")
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}()
	var onEvent func(watch.Event)
	if *metricsAddr != "" {
		m := metrics.New()
		srv, err := m.Listen(*metricsAddr)
		if err != nil {
			return a.fail(exitFailure, "watch: %v", err)
		}
		onEvent = m.Observe
		sctx, stop := context.WithCancel(ctx)
		served := make(chan struct{})
		go func() {
			defer close(served)
			if err := srv.Serve(sctx, metricsShutdown); err != nil {
				a.log.WithError(err).Error("metrics server failed")
			}
		}()
		// The watcher's own shutdown comes first; then scrapes in flight get
		// metricsShutdown.
		defer func() { stop(); <-served }()
		a.log.WithField("addr", srv.Addr().String()).Info("serving metrics at " + metrics.Path)
	}
	w, err := watch.New(watch.Options{
		StateDir:          fuseguard.NewStore(*stateDir).Dir,
		Grace:             *grace,
		CheckInterval:     *check,
		RescanInterval:    *rescan,
		RetryInterval:     *retry,
		MaxRetryInterval:  *maxRetry,
		RecoverTimeout:    *recoverTimeout,
		RescueTimeout:     *rescueTimeout,
		MaxRescues:        *maxRescues,
		MountReadInterval: *mountRead,
		MaxTracked:        *maxTracked,
		Policy:            killer.Policy{AllowSharedFSTypes: allowShared, DryRun: *dryRun},
		Log:               a.log,
		Tracer:            tp.Tracer(),
		OnEvent:           onEvent,
	})
	if errors.Is(err, watch.ErrLocked) {
		return a.fail(exitFailure, "watch: %v", err)
	}
	if err != nil {
		return a.fail(exitFailure, "watch: %v", err)
	}
	if err := w.Run(ctx); err != nil {
		return a.fail(exitFailure, "watch: %v", err)
	}
	return exitOK
}
