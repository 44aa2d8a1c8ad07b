package jaeger_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelsdk"
	"github.com/fuseguard/fuseguard/test/jaeger"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestSpanTreeInJaeger exports a start-time span and a kill-time tree
// linked to it through the telemetry package, then reads them back from
// Jaeger's query API.
func TestSpanTreeInJaeger(t *testing.T) {
	testenv.RequireLong(t)
	j := jaeger.Start(t)
	const service = "fuseguard-jaeger-test"
	env := map[string]string{}
	for _, kv := range j.Env(service) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	ctx := context.Background()
	p, err := otelsdk.New(ctx, otelenv.ConfigFromEnv(func(k string) string { return env[k] }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	if !p.Enabled() {
		t.Fatalf("tracing off with %v", j.Env(service))
	}
	tr := p.Tracer()

	// Start time: the hook's span, stored as a traceparent in the record.
	hookCtx, hook := tr.Start(ctx, "hook.create", trace.WithAttributes(telemetry.ContainerID("c1")))
	stored := telemetry.TraceParent(hookCtx)
	hook.End()

	// Kill time, another trace: linked to the stored start-time context.
	startSC, err := telemetry.ParseTraceParent(stored)
	if err != nil {
		t.Fatal(err)
	}
	killCtx, kill := tr.Start(ctx, "kill", trace.WithLinks(trace.Link{SpanContext: startSC}))
	_, signal := tr.Start(killCtx, "signal")
	telemetry.End(signal, nil)
	_, abort := tr.Start(killCtx, "abort", trace.WithAttributes(telemetry.Conn(57), telemetry.Owned(true)))
	telemetry.End(abort, nil)
	_, verify := tr.Start(killCtx, "verify")
	telemetry.End(verify, errors.New("still stuck"))
	kill.SetAttributes(telemetry.Outcome("recovered"))
	telemetry.End(kill, nil)

	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown (flush to Jaeger): %v", err)
	}

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	traces, err := j.WaitForSpans(wctx, service, func(ts []jaeger.Trace) bool {
		n := 0
		for _, tr := range ts {
			n += len(tr.Spans)
		}
		return n >= 5
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) != 2 {
		t.Fatalf("got %d traces, want the start-time and the kill-time one", len(traces))
	}

	one := func(name string) jaeger.Span {
		t.Helper()
		s := jaeger.Spans(traces, name)
		if len(s) != 1 {
			t.Fatalf("%d spans named %q, want 1", len(s), name)
		}
		return s[0]
	}
	h, k := one("hook.create"), one("kill")
	if h.SpanID != hook.SpanContext().SpanID().String() || h.TraceID != hook.SpanContext().TraceID().String() {
		t.Errorf("hook span %s/%s, exported %v", h.TraceID, h.SpanID, hook.SpanContext())
	}
	if k.SpanID != kill.SpanContext().SpanID().String() || k.Parent() != "" {
		t.Errorf("kill span %s parent %q, want %s as a root", k.SpanID, k.Parent(), kill.SpanContext().SpanID())
	}
	if k.TraceID == h.TraceID {
		t.Error("kill shares the hook's trace; want a link between two traces")
	}
	links := k.Links()
	if len(links) != 1 || links[0].TraceID != h.TraceID || links[0].SpanID != h.SpanID {
		t.Errorf("kill links = %+v, want FOLLOWS_FROM hook %s/%s", links, h.TraceID, h.SpanID)
	}
	if v, _ := k.Tag("fuseguard.outcome"); v != "recovered" {
		t.Errorf("kill fuseguard.outcome = %v", v)
	}
	for _, name := range []string{"signal", "abort", "verify"} {
		if s := one(name); s.Parent() != k.SpanID || s.TraceID != k.TraceID {
			t.Errorf("%s: trace %s parent %q, want child of kill %s", name, s.TraceID, s.Parent(), k.SpanID)
		}
	}
	if v, _ := one("abort").Tag("fuseguard.conn"); v != float64(57) {
		t.Errorf("abort fuseguard.conn = %v (%T), want 57", v, v)
	}
	if v, _ := one("verify").Tag("otel.status_code"); v != "ERROR" {
		t.Errorf("verify otel.status_code = %v, want ERROR", v)
	}
	for _, tr := range traces {
		for id, proc := range tr.Processes {
			if proc.ServiceName != service {
				t.Errorf("process %s service %q, want %q", id, proc.ServiceName, service)
			}
		}
	}
}
