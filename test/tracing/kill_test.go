package tracing_test

import (
	"context"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fuseguard/fuseguard/internal/hook"
	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelsdk"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// memoryProvider is a Provider recording every ended span in memory.
func memoryProvider(t *testing.T) (*otelsdk.Provider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	p, err := otelsdk.New(context.Background(), otelenv.Config{Exporter: otelenv.ExporterNone},
		otelsdk.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p, exp
}

func attr(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// TestKillSpanTree records a real W2 container with the hook (as runc would
// at createRuntime), kills it with killer.Kill and the record, and checks
// the spans: one fuseguard.kill root linked to the hook's span, its stages
// as children in order, the abort naming the aborted connection, outcome
// recovered.
func TestKillSpanTree(t *testing.T) {
	c := fixture.W2(t, "read")
	p, exp := memoryProvider(t)
	tr := p.Tracer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	store := record.Store{Dir: testenv.StateDir(t)}
	rec, err := hook.Run(ctx, oci.CreateRuntime, &specs.State{ID: "w2", Status: specs.StateCreating, Pid: c.InitPID},
		hook.Options{Store: store, Tracer: tr, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Lookup(c.Conn); !ok {
		t.Fatalf("record lacks W2's connection %d: %+v", c.Conn, rec.Connections)
	}
	hookSpans := stubs(exp.GetSpans(), "fuseguard.hook.createRuntime")
	if len(hookSpans) != 1 {
		t.Fatalf("%d hook spans", len(hookSpans))
	}
	hookSC := hookSpans[0].SpanContext
	if rec.TraceParent != telemetry.FormatTraceParent(hookSC) {
		t.Fatalf("record traceparent %q, want the hook span's %v", rec.TraceParent, hookSC)
	}
	exp.Reset()

	rep, err := killer.Kill(ctx, killer.Target{PID: c.InitPID, StartTime: rec.InitStartTime},
		killer.Options{VerifyTimeout: 300 * time.Millisecond, RecoverTimeout: 5 * time.Second, Record: rec, Tracer: tr})
	if err != nil || rep.Outcome != killer.OutcomeRecovered {
		t.Fatalf("Kill: %v, outcome %s", err, rep.Outcome)
	}
	select {
	case <-c.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("init not reaped after the rescue")
	}

	spans := exp.GetSpans()
	roots := stubs(spans, "fuseguard.kill")
	if len(roots) != 1 {
		t.Fatalf("%d fuseguard.kill spans in %v", len(roots), names(spans))
	}
	root := roots[0]
	if root.Parent.IsValid() {
		t.Errorf("fuseguard.kill has parent %v, want a root", root.Parent)
	}
	if root.SpanContext.TraceID() == hookSC.TraceID() {
		t.Error("the kill shares the hook's trace; want its own, linked")
	}
	if len(root.Links) != 1 || root.Links[0].SpanContext.TraceID() != hookSC.TraceID() || root.Links[0].SpanContext.SpanID() != hookSC.SpanID() {
		t.Errorf("fuseguard.kill links %+v, want the hook span %v", root.Links, hookSC)
	}
	wantAttrs := map[attribute.Key]attribute.Value{
		telemetry.KeyOutcome:     attribute.StringValue(string(killer.OutcomeRecovered)),
		telemetry.KeyContainerID: attribute.StringValue("w2"),
		telemetry.KeyProcessPID:  attribute.IntValue(c.InitPID),
	}
	for k, want := range wantAttrs {
		if got, ok := attr(root, k); !ok || got != want {
			t.Errorf("fuseguard.kill %s = %v (%v), want %v", k, got.Emit(), ok, want.Emit())
		}
	}

	// Children, in the order of the report's stages.
	var children []string
	for _, s := range spans {
		if s.Parent.SpanID() == root.SpanContext.SpanID() {
			children = append(children, s.Name)
		}
	}
	var stages []string
	for _, st := range rep.Stages {
		stages = append(stages, "fuseguard.kill."+st.Name)
	}
	// The snapshot (init's mount table held open) is taken on every kill
	// that signals, record or not: it is a live table that proves the
	// container's connection instances.
	wantStages := []string{"fuseguard.kill.open", "fuseguard.kill.snapshot", "fuseguard.kill.signal", "fuseguard.kill.verify",
		"fuseguard.kill.diagnose", "fuseguard.kill.abort", "fuseguard.kill.reverify"}
	if !equal(children, stages) || !equal(children, wantStages) {
		t.Errorf("children of fuseguard.kill %v; report stages %v; want %v", children, stages, wantStages)
	}
	if len(children) != len(spans)-1 {
		t.Errorf("spans outside the kill tree: %v", names(spans))
	}

	aborts := stubs(spans, "fuseguard.kill.abort")
	if len(aborts) != len(rep.Aborted) || len(aborts) != 1 {
		t.Fatalf("%d abort spans, %d aborted: %+v", len(aborts), len(rep.Aborted), rep.Aborted)
	}
	a := aborts[0]
	if v, _ := attr(a, telemetry.KeyConn); v.AsInt64() != int64(c.Conn) {
		t.Errorf("abort fuseguard.conn = %v, want W2's %d", v.Emit(), c.Conn)
	}
	if v, _ := attr(a, telemetry.KeyOwned); !v.AsBool() {
		t.Error("abort fuseguard.owned is not true for W2's own connection")
	}
	if v, _ := attr(a, telemetry.KeyMountPoint); v.AsString() != rep.Aborted[0].MountPoint || v.AsString() == "" {
		t.Errorf("abort fuseguard.mount_point = %q, report %q", v.AsString(), rep.Aborted[0].MountPoint)
	}
	if v, _ := attr(a, telemetry.KeyFSType); v.AsString() != rep.Aborted[0].FSType || v.AsString() == "" {
		t.Errorf("abort fuseguard.fs_type = %q, report %q", v.AsString(), rep.Aborted[0].FSType)
	}
	if _, ok := attr(a, telemetry.KeyWaiting); !ok {
		t.Error("abort has no fuseguard.waiting")
	}

	diag := stubs(spans, "fuseguard.kill.diagnose")[0]
	tid, ok := attr(diag, telemetry.KeyStuckTID)
	frame, _ := attr(diag, telemetry.KeyKernelFrame)
	if !ok || frame.AsString() == "" {
		t.Errorf("diagnose span without stuck tid/frame: %v", diag.Attributes)
	}
	found := false
	for _, st := range rep.Diagnosis.Stuck {
		found = found || (int64(st.TID) == tid.AsInt64() && len(st.Stack) > 0 && st.Stack[0].Function == frame.AsString())
	}
	if !found {
		t.Errorf("diagnose span names tid %d at %q, not a stuck task of the diagnosis %+v", tid.AsInt64(), frame.AsString(), rep.Diagnosis.Stuck)
	}
	if v, _ := attr(root, telemetry.KeyStuckTID); v != tid {
		t.Errorf("root fuseguard.stuck_tid = %v, diagnose %v", v.Emit(), tid.Emit())
	}
	for name, want := range map[string]bool{"fuseguard.kill.verify": false, "fuseguard.kill.reverify": true} {
		if v, ok := attr(stubs(spans, name)[0], "fuseguard.exited"); !ok || v.AsBool() != want {
			t.Errorf("%s fuseguard.exited = %v, want %v", name, v.Emit(), want)
		}
	}
	for _, s := range spans {
		if s.Status.Code == codes.Error {
			t.Errorf("span %s has status error: %s", s.Name, s.Status.Description)
		}
	}
}

// TestKillFailureStatus: a kill that cannot verify (the pid was reused)
// ends with the error on the root span's status.
func TestKillFailureStatus(t *testing.T) {
	c := fixture.W4(t)
	p, exp := memoryProvider(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := killer.Kill(ctx, killer.Target{PID: c.InitPID, StartTime: 1}, killer.Options{Tracer: p.Tracer()})
	if err == nil {
		t.Fatal("Kill of a stale target succeeded")
	}
	root := stubs(exp.GetSpans(), "fuseguard.kill")
	open := stubs(exp.GetSpans(), "fuseguard.kill.open")
	if len(root) != 1 || len(open) != 1 {
		t.Fatalf("spans %v", names(exp.GetSpans()))
	}
	if root[0].Status.Code != codes.Error || root[0].Status.Description != err.Error() {
		t.Errorf("fuseguard.kill status %+v, want error %q", root[0].Status, err)
	}
	if open[0].Status.Code != codes.Error {
		t.Errorf("fuseguard.kill.open status %+v, want an error", open[0].Status)
	}
}

func stubs(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
