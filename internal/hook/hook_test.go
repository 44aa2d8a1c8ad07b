package hook_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/hook"
	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/internal/untrusted"
	"github.com/fuseguard/fuseguard/record"
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
	store := record.Store{Dir: testenv.StateDir(t)}
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
	gone := record.RecordedConnection{Connection: fuseconn.Connection{Mount: fuseconn.Mount{Conn: 99999, FSType: "fuse.gone"}, Owned: true}}
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
	if _, err := store.Load("w4"); !errors.Is(err, record.ErrNoRecord) {
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
	store := record.Store{Dir: testenv.StateDir(t)}
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

// bufferLog is a text logger, safe for a terminal, writing into a buffer.
func bufferLog() (*logrus.Logger, *strings.Builder) {
	var b strings.Builder
	log := logrus.New()
	log.SetOutput(&b)
	log.SetFormatter(untrusted.Formatter{Formatter: &logrus.TextFormatter{DisableColors: true}})
	return log, &b
}

// TestHostileTraceParent: an annotation that is not exactly a W3C
// traceparent is never stored, and the log says why, escaped.
func TestHostileTraceParent(t *testing.T) {
	c := fixture.W4(t)
	store := record.Store{Dir: testenv.StateDir(t)}
	log, logBuf := bufferLog()
	hostile := traceParent + "\x1b]0;owned\a"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := &specs.State{ID: "hostile", Status: specs.StateCreating, Pid: c.InitPID,
		Annotations: map[string]string{telemetry.AnnotationTraceParent: hostile}}
	r, err := hook.Run(ctx, oci.CreateRuntime, st, hook.Options{Store: store, Log: log, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	saved, err := store.Load("hostile")
	if err != nil {
		t.Fatal(err)
	}
	if r.TraceParent != "" || saved.TraceParent != "" {
		t.Errorf("record traceparent %q (saved %q), want none", r.TraceParent, saved.TraceParent)
	}
	out := logBuf.String()
	if !strings.Contains(out, "trace context dropped") || !strings.Contains(out, `x1b]0;owned`) {
		t.Errorf("log does not say why, escaped:\n%s", out)
	}
	if strings.ContainsAny(strings.TrimSuffix(out, "\n"), "\x1b\a\n") {
		t.Errorf("log holds control bytes: %q", out)
	}
}

// TestRunHostTableUnreadable: the hook never stops a container: with the
// host's mount table unreadable it still records the container (W4, a
// healthy FUSE mount inside), with the connection's ownership unknown, and
// logs why.
func TestRunHostTableUnreadable(t *testing.T) {
	c := fixture.W4(t)
	store := record.Store{Dir: testenv.StateDir(t)}
	log, logBuf := bufferLog()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := &specs.State{ID: "nohost", Status: specs.StateCreating, Pid: c.InitPID}
	r, err := hook.Run(ctx, oci.CreateRuntime, st, hook.Options{Store: store, Log: log, Proc: fixture.ProcWithPID1(t, fixture.GarbagePID1(t))})
	if err != nil {
		t.Fatalf("hook failed with the host table unreadable: %v", err)
	}
	got, ok := r.Lookup(c.Conn)
	if !ok || got.Owned || !strings.HasPrefix(got.OwnershipUnknown, "host mount table unreadable: ") {
		t.Fatalf("record %+v: want connection %d with unknown ownership", r.Connections, c.Conn)
	}
	if saved, err := store.Load("nohost"); err != nil || len(saved.Connections) != len(r.Connections) {
		t.Fatalf("saved record %+v, %v", saved, err)
	}
	if out := logBuf.String(); !strings.Contains(out, "unknown ownership") || !strings.Contains(out, "host mount table unreadable") {
		t.Errorf("log does not say why:\n%s", out)
	}
}

// TestRunErrors: a dead pid, an unknown stage and a cancelled context are
// errors, and nothing is saved.
func TestRunErrors(t *testing.T) {
	store := record.Store{Dir: testenv.StateDir(t)}
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
	const (
		fromAnnotation = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		fromEnv        = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
	)
	tests := []struct {
		name        string
		annotation  string
		env         string
		want        string
		wantDropped int
	}{
		{"annotation first", fromAnnotation, fromEnv, fromAnnotation, 0},
		{"env fallback", "", fromEnv, fromEnv, 0},
		{"neither", "", "", "", 0},
		{"bad annotation, env used", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\x1b[2J", fromEnv, fromEnv, 1},
		{"both bad", "garbage\n", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "", 2},
		{"upper case", strings.ToUpper(fromAnnotation), "", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &specs.State{Annotations: map[string]string{}}
			if tt.annotation != "" {
				st.Annotations[telemetry.AnnotationTraceParent] = tt.annotation
			}
			env := func(k string) string {
				if k == telemetry.EnvTraceParent {
					return tt.env
				}
				return ""
			}
			sc, dropped := hook.TraceParent(st, env)
			if got := telemetry.FormatTraceParent(sc); got != tt.want || len(dropped) != tt.wantDropped {
				t.Fatalf("TraceParent = %q, dropped %v; want %q, %d dropped", got, dropped, tt.want, tt.wantDropped)
			}
			for _, err := range dropped {
				if !errors.Is(err, telemetry.ErrInvalidTraceParent) {
					t.Errorf("dropped for %v, want ErrInvalidTraceParent", err)
				}
			}
		})
	}
}
