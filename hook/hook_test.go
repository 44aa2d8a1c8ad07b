package hook_test

import (
	"context"
	"errors"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/hook"
	"github.com/fuseguard/fuseguard/oci"
	"github.com/fuseguard/fuseguard/telemetry"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

const traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// TestRunLifecycle records a real container (fixture W4: init serving a
// healthy FUSE mount), refreshes it without forgetting a connection seen
// only earlier, and removes it at poststop; the spans are the documented
// ones, under the annotation's trace.
func TestRunLifecycle(t *testing.T) {
	c := fixture.W4(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	store := fuseguard.Store{Dir: testenv.StateDir(t)}
	opts := hook.Options{Store: store, Tracer: tp.Tracer("test"), Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := &specs.State{ID: "w4", Status: specs.StateCreating, Pid: c.InitPID, Bundle: "/bundle",
		Annotations: map[string]string{telemetry.AnnotationTraceParent: traceParent}}

	r, err := hook.Run(ctx, oci.CreateRuntime, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.InitPID != c.InitPID || r.InitStartTime == 0 || r.Bundle != "/bundle" {
		t.Fatalf("record %+v", r)
	}
	// The record holds the hook span's own context (for the kill's link),
	// a child of the annotation's.
	if want := endedTraceParent(t, rec, "fuseguard.hook.createRuntime"); r.TraceParent != want {
		t.Errorf("record traceparent %q, want the createRuntime span's %q", r.TraceParent, want)
	}
	if _, ok := r.Lookup(c.Conn); !ok {
		t.Fatalf("record lacks W4's connection %d: %+v", c.Conn, r.Connections)
	}

	// A connection recorded earlier and gone since must be kept.
	gone := fuseguard.RecordedConnection{Connection: fuseguard.Connection{Mount: fuseguard.Mount{Conn: 99999, FSType: "fuse.gone"}, Owned: true}}
	r.Connections = append(r.Connections, gone)
	if err := store.Save(r); err != nil {
		t.Fatal(err)
	}
	st.Status = specs.StateRunning
	r2, err := hook.Run(ctx, oci.Poststart, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r2.Lookup(99999); !ok {
		t.Fatalf("poststart forgot a recorded connection: %+v", r2.Connections)
	}
	if want := endedTraceParent(t, rec, "fuseguard.hook.poststart"); r2.TraceParent != want {
		t.Errorf("refreshed traceparent %q, want the poststart span's %q", r2.TraceParent, want)
	}
	if !r2.Created.Equal(r.Created) {
		t.Errorf("refresh changed Created: %v -> %v", r.Created, r2.Created)
	}
	if loaded, err := store.Load("w4"); err != nil || len(loaded.Connections) != len(r2.Connections) {
		t.Fatalf("stored record %+v, %v", loaded, err)
	}

	if _, err := hook.Run(ctx, oci.Poststop, &specs.State{ID: "w4", Status: specs.StateStopped, Bundle: "/bundle"}, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load("w4"); !errors.Is(err, fuseguard.ErrNoRecord) {
		t.Fatalf("after poststop: %v", err)
	}

	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
		if s.Name() == "fuseguard.hook.createRuntime" && s.Parent().TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("hook span not under the annotation's trace: parent %v", s.Parent())
		}
	}
	for _, want := range []string{"fuseguard.hook.createRuntime", "fuseguard.record.save", "fuseguard.hook.poststart", "fuseguard.hook.poststop"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("no span %s in %v", want, names)
		}
	}
}

// endedTraceParent is the traceparent of the one ended span named name.
func endedTraceParent(t *testing.T, rec *tracetest.SpanRecorder, name string) string {
	t.Helper()
	var found []string
	for _, s := range rec.Ended() {
		if s.Name() == name {
			found = append(found, telemetry.FormatTraceParent(s.SpanContext()))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d ended spans named %s, want 1", len(found), name)
	}
	return found[0]
}

// TestTraceParentTracingOff: without a tracer the record keeps the
// context the container was started under.
func TestTraceParentTracingOff(t *testing.T) {
	c := fixture.W4(t)
	store := fuseguard.Store{Dir: testenv.StateDir(t)}
	env := func(k string) string {
		if k == telemetry.EnvTraceParent {
			return traceParent
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := hook.Run(ctx, oci.CreateRuntime, &specs.State{ID: "off", Status: specs.StateCreating, Pid: c.InitPID}, hook.Options{Store: store, Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	if r.TraceParent != traceParent {
		t.Errorf("record traceparent %q, want TRACEPARENT's %q", r.TraceParent, traceParent)
	}
}

// TestRunErrors: a dead pid, an unknown stage and a cancelled context are
// errors, and nothing is saved.
func TestRunErrors(t *testing.T) {
	store := fuseguard.Store{Dir: testenv.StateDir(t)}
	opts := hook.Options{Store: store}
	ctx := context.Background()
	st := &specs.State{ID: "x", Status: specs.StateCreating, Pid: 1 << 22, Bundle: "/b"}
	if _, err := hook.Run(ctx, oci.CreateRuntime, st, opts); err == nil {
		t.Error("no error for a pid that does not exist")
	}
	if _, err := hook.Run(ctx, oci.Stage("prestart"), st, opts); !errors.Is(err, oci.ErrUnknownStage) {
		t.Errorf("unknown stage: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := hook.Run(cctx, oci.Poststop, st, opts); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if recs, err := store.List(); err != nil || len(recs) != 0 {
		t.Errorf("records: %v %v", recs, err)
	}
}

func TestTraceParent(t *testing.T) {
	env := func(k string) string {
		if k == telemetry.EnvTraceParent {
			return "from-env"
		}
		return ""
	}
	if got := hook.TraceParent(&specs.State{Annotations: map[string]string{telemetry.AnnotationTraceParent: "from-annotation"}}, env); got != "from-annotation" {
		t.Errorf("annotation first: %q", got)
	}
	if got := hook.TraceParent(&specs.State{}, env); got != "from-env" {
		t.Errorf("env fallback: %q", got)
	}
}
