//go:build fuseguard_lean

// The lean build of this command is fuseguard-runtime: the runtime wrapper
// and the hooks it injects, which Docker and containerd run several times
// on every container's start, kill and removal. It links only what those
// need, the rescue (package killer) included, and none of the OTLP
// exporter, gRPC, Prometheus or the Docker client, whose package
// initialisation alone costs each process several milliseconds. Built with
// `go build -tags fuseguard_lean -o fuseguard-runtime ./cmd/fuseguard`.

package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"
)

// fullName is the full fuseguard binary, installed beside this one: it runs
// the node watcher and takes over when spans are to be exported.
const fullName = "fuseguard"

// run is fuseguard-runtime whatever argv0 is. When the environment asks for
// tracing it first hands the whole process over to the full binary, with
// the same argv, environment and descriptors (execve): nothing has been
// read or done yet, so the full binary behaves exactly as if run first.
func run(ctx context.Context, _ string, args []string) int {
	a := newApp()
	if otelenv.ConfigFromEnv(a.getenv).Enabled() {
		if bin, err := fullBinary(); err == nil {
			// Returns only on failure: then run lean, without spans
			// (tracing logs why), rather than fail the runtime.
			_ = syscall.Exec(bin, os.Args, os.Environ())
		}
	}
	return runtimeEntry(ctx, a, args)
}

// fullBinary is the full fuseguard binary beside this one.
func fullBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(self), fullName), nil
}

// tracing returns ctx under the caller's TRACEPARENT (passed on to the
// runtime and the hooks) and a tracer that records nothing: with tracing
// configured, run has handed off to the full binary, and is here only if
// that failed, which it logs.
func (a *app) tracing(ctx context.Context, log logrus.FieldLogger) (context.Context, trace.Tracer, func()) {
	if otelenv.ConfigFromEnv(a.getenv).Enabled() {
		bin, _ := fullBinary()
		log.WithField("binary", bin).Warn("tracing is configured but the full fuseguard binary could not be run: no spans exported")
	}
	return telemetry.ExtractEnv(ctx, a.getenv), noop.NewTracerProvider().Tracer(""), func() {}
}
