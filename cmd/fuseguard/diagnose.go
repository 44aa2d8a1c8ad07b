package main

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/killer"
)

func cmdDiagnose(ctx context.Context, a *app, args []string) int {
	var tf targetFlags
	fs, c, code, ok := a.command("diagnose", args, tf.bind)
	if !ok {
		return code
	}
	t, opts, code, err := tf.resolve(a, c, fs.Args())
	if err != nil {
		return a.fail(code, "diagnose: %v", err)
	}
	ctx, tr, shutdown := a.tracing(ctx, a.log)
	defer shutdown()
	d, err := diagnose(ctx, tr, t, opts)
	if err != nil {
		return a.fail(targetExit(err), "diagnose: %v", err)
	}
	if tf.json {
		if err := a.printJSON(d); err != nil {
			return a.fail(exitFailure, "diagnose: %v", err)
		}
		return exitOK
	}
	d.Explain(a.stdout)
	return exitOK
}

// diagnose runs killer.Diagnose in a fuseguard.diagnose span.
func diagnose(ctx context.Context, tr trace.Tracer, t killer.Target, opts killer.Options) (d *killer.Diagnosis, err error) {
	attrs := []attribute.KeyValue{telemetry.ProcessPID(t.PID)}
	if opts.Record != nil {
		attrs = append(attrs, telemetry.ContainerID(opts.Record.ID))
	}
	ctx, span := tr.Start(ctx, "fuseguard.diagnose", trace.WithAttributes(attrs...))
	defer func() {
		if d != nil {
			span.SetAttributes(d.Attributes()...)
		}
		telemetry.End(span, err)
	}()
	return killer.Diagnose(ctx, t, opts)
}
