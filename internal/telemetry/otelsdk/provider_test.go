package otelsdk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/test/loopback"
)

func shutdown(t *testing.T, p *Provider) {
	t.Cleanup(func() { p.Shutdown(context.Background()) })
}

func TestOffByDefault(t *testing.T) {
	p, err := New(context.Background(), otelenv.ConfigFromEnv(func(string) string { return "" }))
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, p)
	if p.Enabled() {
		t.Error("provider enabled without an endpoint")
	}
	_, span := p.Tracer().Start(context.Background(), "x")
	if span.IsRecording() {
		t.Error("span recording with tracing off")
	}
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestUnknownExporter(t *testing.T) {
	p, err := New(context.Background(), otelenv.Config{Exporter: "zipkin", Endpoint: "http://127.0.0.1:1"})
	if !errors.Is(err, ErrUnknownExporter) {
		t.Fatalf("New: %v, want ErrUnknownExporter", err)
	}
	if p == nil || p.Enabled() {
		t.Fatalf("New returned %v, want a no-op provider", p)
	}
	_, span := p.Tracer().Start(context.Background(), "x")
	span.End()
}

// startTP is the traceparent of a container's start-time hook span, which
// the kill links to.
const startTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestSpanTree checks the spans, parents, links, attributes, status and
// resource that reach an exporter.
func TestSpanTree(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p, err := New(context.Background(), otelenv.Config{ServiceName: "fuseguard-test"},
		WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp)))
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, p)
	if !p.Enabled() {
		t.Fatal("provider with a span processor is not enabled")
	}
	start, err := telemetry.ParseTraceParent(startTP)
	if err != nil {
		t.Fatal(err)
	}

	tr := p.Tracer()
	ctx, root := tr.Start(context.Background(), "kill",
		trace.WithLinks(trace.Link{SpanContext: start}),
		trace.WithAttributes(telemetry.ContainerID("c1"), telemetry.ProcessPID(42)))
	_, abort := tr.Start(ctx, "abort", trace.WithAttributes(telemetry.Conn(57), telemetry.Owned(true), telemetry.FSType("fuse.sshfs")))
	telemetry.End(abort, nil)
	_, verify := tr.Start(ctx, "verify")
	telemetry.End(verify, errors.New("still stuck"))
	root.SetAttributes(telemetry.Outcome("recovered"))
	telemetry.End(root, nil)

	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	if len(spans) != 3 || len(byName) != 3 {
		t.Fatalf("got %d spans %v, want kill, abort, verify", len(spans), byName)
	}
	k, a, v := byName["kill"], byName["abort"], byName["verify"]
	if k.Parent.IsValid() {
		t.Errorf("kill has parent %v", k.Parent)
	}
	for _, c := range []tracetest.SpanStub{a, v} {
		if c.Parent.SpanID() != k.SpanContext.SpanID() || c.SpanContext.TraceID() != k.SpanContext.TraceID() {
			t.Errorf("%s: parent %v, want kill %v", c.Name, c.Parent, k.SpanContext)
		}
	}
	if len(k.Links) != 1 || !k.Links[0].SpanContext.Equal(start) {
		t.Errorf("kill links = %v, want %v", k.Links, start)
	}
	attrs := func(s tracetest.SpanStub) map[string]string {
		m := map[string]string{}
		for _, kv := range s.Attributes {
			m[string(kv.Key)] = kv.Value.Emit()
		}
		return m
	}
	for key, want := range map[string]string{"container.id": "c1", "process.pid": "42", "fuseguard.outcome": "recovered"} {
		if got := attrs(k)[key]; got != want {
			t.Errorf("kill %s = %q, want %q", key, got, want)
		}
	}
	for key, want := range map[string]string{"fuseguard.conn": "57", "fuseguard.owned": "true", "fuseguard.fs_type": "fuse.sshfs"} {
		if got := attrs(a)[key]; got != want {
			t.Errorf("abort %s = %q, want %q", key, got, want)
		}
	}
	if a.Status.Code != codes.Unset || v.Status.Code != codes.Error || v.Status.Description != "still stuck" {
		t.Errorf("status: abort %v, verify %v", a.Status, v.Status)
	}
	if len(v.Events) != 1 || v.Events[0].Name != "exception" {
		t.Errorf("verify events = %v, want the recorded error", v.Events)
	}
	if name, ok := k.Resource.Set().Value(semconv.ServiceNameKey); !ok || name.AsString() != "fuseguard-test" {
		t.Errorf("resource service.name = %v", name)
	}
	if k.InstrumentationScope.Name != telemetry.InstrumentationName {
		t.Errorf("scope = %q", k.InstrumentationScope.Name)
	}
}

func TestConsoleExporter(t *testing.T) {
	var buf bytes.Buffer
	p, err := New(context.Background(), otelenv.Config{Exporter: otelenv.ExporterConsole, Console: &buf})
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, p)
	_, span := p.Tracer().Start(context.Background(), "console-span")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"console-span"`) {
		t.Errorf("console output lacks the span:\n%s", buf.String())
	}
}

// TestOTLPEndpoint exports to a real HTTP server and checks the request
// the environment's base endpoint leads to.
func TestOTLPEndpoint(t *testing.T) {
	type request struct{ method, path, ctype string }
	var (
		mu   sync.Mutex
		reqs []request
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		reqs = append(reqs, request{r.Method, r.URL.Path, r.Header.Get("Content-Type")})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)

	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}
	p, err := New(context.Background(), otelenv.ConfigFromEnv(func(k string) string { return env[k] }))
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, p)
	_, span := p.Tracer().Start(context.Background(), "x")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 1 || reqs[0] != (request{"POST", "/v1/traces", "application/x-protobuf"}) {
		t.Errorf("collector got %+v, want one POST /v1/traces protobuf", reqs)
	}
}

// emitAndShutdown is one short-lived fuseguard process's worth of tracing.
func emitAndShutdown(ctx context.Context, cfg otelenv.Config) (time.Duration, error) {
	t0 := time.Now()
	p, err := New(ctx, cfg)
	if err != nil {
		return 0, err
	}
	ctx, root := p.Tracer().Start(ctx, "hook", trace.WithAttributes(telemetry.ContainerID("c1")))
	_, child := p.Tracer().Start(ctx, "record.write")
	child.End()
	root.End()
	err = p.Shutdown(ctx)
	return time.Since(t0), err
}

func TestCollectorDown(t *testing.T) {
	// A bound, not a performance figure: connection refused is immediate,
	// so anything near this means a retry or a hang.
	const bound = 500 * time.Millisecond
	took, err := emitAndShutdown(context.Background(), otelenv.Config{Endpoint: "http://" + loopback.Closed(t) + "/v1/traces"})
	if !errors.Is(err, ErrExport) {
		t.Errorf("Shutdown error = %v, want ErrExport", err)
	}
	if took > bound {
		t.Errorf("New+span+Shutdown with the collector down took %v, want < %v", took, bound)
	}
}

func TestCollectorHung(t *testing.T) {
	addr := loopback.Hung(t)
	const exportTimeout = 200 * time.Millisecond

	// The export timeout bounds a hung export...
	took, err := emitAndShutdown(context.Background(), otelenv.Config{Endpoint: "http://" + addr, ExportTimeout: exportTimeout})
	if !errors.Is(err, ErrExport) {
		t.Errorf("Shutdown error = %v, want ErrExport", err)
	}
	if took < exportTimeout/2 || took > exportTimeout+time.Second {
		t.Errorf("hung collector: took %v, want about the export timeout %v", took, exportTimeout)
	}

	// ...and the caller's context bounds Shutdown below it.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	took, err = emitAndShutdown(ctx, otelenv.Config{Endpoint: "http://" + addr, ExportTimeout: 10 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown error = %v, want DeadlineExceeded", err)
	}
	if took > time.Second {
		t.Errorf("hung collector with a 50ms context: took %v", took)
	}
}
