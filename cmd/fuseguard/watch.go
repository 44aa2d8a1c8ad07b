//go:build !fuseguard_lean

package main

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/internal/metrics"
	"github.com/fuseguard/fuseguard/internal/obs"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelsdk"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/record"
)

// metricsShutdown bounds the wait for scrapes in flight at exit.
const metricsShutdown = 2 * time.Second

// cmdWatch runs the node watcher until SIGTERM or SIGINT.
func cmdWatch(ctx context.Context, a *app, args []string) int {
	var dryRun bool
	fs, c, code, ok := a.command("watch", args, func(fs *flag.FlagSet, c *config.Config) {
		bindStateDir(fs, c)
		bindWatch(fs, c)
		bindRecoverTimeout(fs, c)
		bindPolicy(fs, c)
		fs.BoolVar(&dryRun, "dry-run", false, "detect and diagnose, abort nothing")
	})
	if !ok {
		return code
	}
	if fs.NArg() != 0 {
		return a.fail(exitUsage, "watch: takes no arguments")
	}
	if c.Log.File != "" {
		lf, err := obs.OpenLogFile(c.Log.File, 0, 0)
		if err != nil {
			return a.fail(exitFailure, "watch: %v", err)
		}
		defer lf.Close()
		a.log.SetOutput(lf)
	}
	tp, err := otelsdk.New(ctx, otelenv.ConfigFromEnv(a.getenv))
	if err != nil {
		a.log.WithError(err).Warn("tracing disabled")
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}()
	var onEvent func(watch.Event)
	if c.Watch.MetricsAddr != "" {
		m := metrics.New()
		srv, err := m.Listen(c.Watch.MetricsAddr)
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
	opts := watchOptions(c)
	opts.StateDir = record.NewStore(c.StateDir).Dir
	opts.Policy.DryRun = dryRun
	opts.Log = a.log
	opts.Tracer = tp.Tracer()
	opts.OnEvent = onEvent
	w, err := watch.New(opts)
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
