// Command fuseguard-demo wedges a real container on FUSE and rescues it with
// fuseguard's bounded kill: `make demo`, the main job on the embedded
// default (no Docker, no Jaeger; root and /dev/fuse).
//
// It is a command of its own because its container carries a FUSE server:
// the wedging daemon is the test suite's fusefixture (test/fusefixture,
// serving test/wedgefs with go-fuse), which this binary runs by
// re-executing itself (package internal/demo). The node binary,
// cmd/fuseguard, links no FUSE server and no test code (test/deps).
//
// Exit codes: 0 rescued; 1 the demo failed (or the container was not
// rescued); 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/fuseguard/fuseguard/internal/demo"
	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelsdk"
	"github.com/fuseguard/fuseguard/internal/untrusted"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == demo.ChildCommand {
		os.Exit(demo.Child(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintln(stderr, "fuseguard-demo: "+untrusted.Line(fmt.Sprintf(format, a...)))
		return code
	}
	fs := flag.NewFlagSet("fuseguard-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verify := fs.Duration("verify-timeout", 0, "killer's verify timeout (default 2s)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 0 {
		return fail(exitUsage, "takes no arguments")
	}
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetFormatter(untrusted.Formatter{Formatter: &logrus.TextFormatter{}})
	lvl, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		return fail(exitUsage, "--log-level: %v", err)
	}
	log.SetLevel(lvl)

	// Tracing as the fuseguard commands do it: off without an OTEL_*
	// endpoint, never failing the demo.
	tp, err := otelsdk.New(ctx, otelenv.ConfigFromEnv(getenv))
	if err != nil {
		log.WithError(err).Debug("tracing off")
	}
	defer func() {
		// Without the caller's cancel, so that an interrupted demo still
		// delivers its spans; Shutdown bounds itself.
		if err := tp.Shutdown(context.WithoutCancel(ctx)); err != nil {
			log.WithError(err).Debug("spans not delivered")
		}
	}()
	ctx = telemetry.ExtractEnv(ctx, getenv)

	if err := demo.Run(ctx, stdout, demo.Options{VerifyTimeout: *verify, Log: log, Tracer: tp.Tracer()}); err != nil {
		return fail(exitFailure, "%v", err)
	}
	return exitOK
}
