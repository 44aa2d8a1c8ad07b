// Command titus-shutdown shuts a task's container down the way
// titus-executor's runner does at the end of a task (doShutdown →
// DockerRuntime.Kill: a stop with the task's kill-wait grace, then a kill),
// but through fuseguard's executor package: every Docker call has a
// deadline, and a container wedged in FUSE is rescued instead of leaving
// the runner blocked for days. It prints the report of each step.
//
//	titus-shutdown -id CONTAINER [-host unix:///var/run/docker.sock] [-grace 10s] [-docker-timeout 2s] [-json]
//
// Exit status: 0 when the container is gone and Docker agrees, 1 when it
// is gone but Docker did not confirm, or it survived, 2 on bad usage.
//
// Tracing: the executor traces through the OpenTelemetry API with the
// tracer its caller gives it, and links no SDK or exporter of its own. This
// program is such a caller: with OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set it builds its own SDK provider
// and OTLP/HTTP exporter (see newTracer), as a runner would with its own.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/executor"
	"github.com/fuseguard/fuseguard/killer"
)

func main() { os.Exit(run()) }

func run() int {
	host := flag.String("host", "", "Docker daemon address (default: $DOCKER_HOST, else the local socket)")
	id := flag.String("id", "", "container id, id prefix or name (required)")
	grace := flag.Duration("grace", 10*time.Second, "time the task gets to exit after SIGTERM (titus killWaitSeconds)")
	dockerTimeout := flag.Duration("docker-timeout", executor.DefaultDockerTimeout, "deadline of each Docker call")
	stateDir := flag.String("state-dir", "", "fuseguard record directory (default: $FUSEGUARD_STATE_DIR, else /run/fuseguard)")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	debug := flag.Bool("debug", false, "log every step")
	flag.Parse()
	if *id == "" || flag.NArg() > 0 {
		flag.Usage()
		return 2
	}

	log := logrus.New()
	log.SetOutput(os.Stderr)
	if *debug {
		log.SetLevel(logrus.DebugLevel)
	}
	cli, err := executor.NewDockerClient(*host)
	if err != nil {
		log.Error(err)
		return 2
	}
	defer cli.Close()

	// The runner's own context: ^C ends the shutdown, promptly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tracer, shutdown := newTracer(ctx, log)
	defer shutdown()

	k := &executor.Killer{Docker: cli, DockerTimeout: *dockerTimeout, Log: log, Tracer: tracer}
	if *stateDir != "" {
		k.Store.Dir = *stateDir
	}
	fmt.Fprintf(os.Stderr, "stopping %s: grace %v, bound %v\n", *id, *grace, k.StopBound(*grace))

	rep, err := k.Stop(ctx, *id, *grace)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.Timeline(os.Stdout)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, executor.ErrDockerNoAnswer) && gone(rep.Outcome):
		fmt.Fprintf(os.Stderr, "container processes gone, Docker did not confirm: %v\n", err)
		return 1
	default:
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return 1
	}
}

func gone(o killer.Outcome) bool {
	return o == killer.OutcomeExited || o == killer.OutcomeRecovered || o == killer.OutcomeAlreadyGone
}

// newTracer is the caller's own OpenTelemetry SDK set-up: an OTLP/HTTP
// exporter configured by the standard OTEL_EXPORTER_OTLP_* variables behind
// a batch processor. Without an endpoint it returns a nil tracer, and the
// executor records no spans. shutdown flushes within 2 s.
func newTracer(ctx context.Context, log logrus.FieldLogger) (trace.Tracer, func()) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, func() {}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		log.WithError(err).Warn("tracing off")
		return nil, func() {}
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("titus-shutdown"))))
	return tp.Tracer("titus-shutdown"), func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			log.WithError(err).Debug("spans not delivered")
		}
	}
}
