//go:build !fuseguard_lean

package main

import (
	"context"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelsdk"
)

// flushTimeout bounds both one span export and the flush at the end of a
// command, unless OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT says otherwise. Hooks
// and the runtime wrapper sit on a container's start and kill path, where
// tracing may add at most 20 ms even with a hung collector: this deadline
// plus the ~5 ms the exporter's setup and teardown cost a short-lived
// process (test/tracing's benchmarks). On the loopback or a node-local
// collector an export takes a few milliseconds; a remote one may need the
// variable raised.
const flushTimeout = 15 * time.Millisecond

// tracing builds the tracer provider the environment asks for (off without
// an endpoint) and returns ctx under the caller's TRACEPARENT, its tracer,
// and a shutdown that flushes within flushTimeout. Tracing never fails a
// command: its errors are logged at debug level. shutdown may be called
// more than once.
func (a *app) tracing(ctx context.Context, log logrus.FieldLogger) (context.Context, trace.Tracer, func()) {
	cfg := otelenv.ConfigFromEnv(a.getenv)
	if cfg.ExportTimeout <= 0 {
		cfg.ExportTimeout = flushTimeout
	}
	cfg.ShutdownTimeout = cfg.ExportTimeout
	p, err := otelsdk.New(ctx, cfg)
	if err != nil {
		log.WithError(err).Debug("tracing off")
	}
	shutdown := sync.OnceFunc(func() {
		// Without the caller's cancel: a SIGTERM must not drop the spans of
		// the work it interrupted. Provider.Shutdown bounds it.
		if err := p.Shutdown(context.WithoutCancel(ctx)); err != nil {
			log.WithError(err).Debug("spans not delivered")
		}
	})
	return telemetry.ExtractEnv(ctx, a.getenv), p.Tracer(), shutdown
}
