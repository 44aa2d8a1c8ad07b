package executor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/executor"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestNoDaemon: with no dockerd listening at all (a socket path nobody
// serves), Kill and Stop take init from the record and do the work through
// pidfds, on real PID and mount namespaces built by test/fixture.
func TestNoDaemon(t *testing.T) {
	testenv.RequireFUSE(t)
	cli, err := executor.NewDockerClient("unix://" + filepath.Join(t.TempDir(), "nobody.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	store := record.NewStore(testenv.StateDir(t))
	k := &executor.Killer{Docker: cli, Store: store}
	save := func(t *testing.T, id string, pid int) *record.Record {
		t.Helper()
		rec, err := record.NewRecord(proc.NewFS(""), id, pid, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Save(rec); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Remove(id) })
		return rec
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("W2Kill", func(t *testing.T) {
		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		k := &executor.Killer{Docker: cli, Store: store, Tracer: tp.Tracer("executor-test")}
		c := fixture.W2(t, "read")
		const id = "aaaa0000000000000000000000000000000000000000000000000000000000w2"
		save(t, id, c.InitPID)
		rep, err := k.Kill(ctx, id[:8])
		logReport(t, rep)
		if !errors.Is(err, executor.ErrDockerNoAnswer) {
			t.Errorf("Kill: %v, want ErrDockerNoAnswer", err)
		}
		if rep.Outcome != killer.OutcomeRecovered || rep.ContainerID != id || rep.PIDFrom != "record" || !abortedConn(rep, uint32(c.Conn)) {
			t.Fatalf("Kill: outcome %s of %s, pid from %s, rescue %+v; want recovered %s from record, connection %d aborted",
				rep.Outcome, rep.ContainerID, rep.PIDFrom, rep.Rescue, id, c.Conn)
		}
		select {
		case <-c.Exited():
		case <-time.After(5 * time.Second):
			t.Fatalf("init %d not reaped 5s after a recovered Kill", c.InitPID)
		}
		checkSpans(t, spans.Ended(), rep)
	})

	t.Run("IdleStop", func(t *testing.T) {
		c := fixture.Idle(t, 2)
		const id = "bbbb0000000000000000000000000000000000000000000000000000000000id"
		save(t, id, c.InitPID)
		rep, err := k.Stop(ctx, id, 5*time.Second)
		logReport(t, rep)
		if !errors.Is(err, executor.ErrDockerNoAnswer) || rep.Outcome != killer.OutcomeExited {
			t.Fatalf("Stop: %s, %v; want exited and ErrDockerNoAnswer", rep.Outcome, err)
		}
		if _, ok := rep.Stage(executor.StagePidfdTerm); !ok {
			t.Errorf("steps %v: want SIGTERM through the pidfd", stageNames(rep))
		}
		select {
		case <-c.Exited():
		case <-time.After(5 * time.Second):
			t.Fatalf("init %d not reaped 5s after Stop", c.InitPID)
		}
		// The record now names a dead pid: nothing to kill.
		rep, err = k.Kill(ctx, id)
		if err == nil || rep.Outcome != killer.OutcomeAlreadyGone {
			t.Errorf("Kill after Stop: %s, %v; want already-gone, with Docker's silence as the error", rep.Outcome, err)
		}
	})

	t.Run("NoInit", func(t *testing.T) {
		save(t, "cccc1111", os.Getpid()) // two records sharing a prefix
		save(t, "cccc2222", os.Getpid())
		for _, tc := range []struct {
			id      string
			wantErr []error
			wantMsg string
		}{
			{"dddd", []error{killer.ErrNoInit, executor.ErrDockerNoAnswer, record.ErrNoRecord}, ""},
			{"cccc", []error{killer.ErrNoInit, executor.ErrDockerNoAnswer}, "names both"},
			{"../etc", []error{killer.ErrNoInit, record.ErrInvalidID}, ""},
		} {
			rep, err := k.Kill(ctx, tc.id)
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("Kill(%q): %v, want %v", tc.id, err, want)
				}
			}
			if !strings.Contains(errString(err), tc.wantMsg) {
				t.Errorf("Kill(%q): %v, want it to say %q", tc.id, err, tc.wantMsg)
			}
			if rep.Outcome != executor.OutcomeUnknown || rep.Target.PID != 0 {
				t.Errorf("Kill(%q): outcome %s, target %+v; want unknown, none", tc.id, rep.Outcome, rep.Target)
			}
		}
	})
}

// checkSpans: one root span per call, one child per step in the report's
// order, and killer.Kill's own tree under the step that ran it.
func checkSpans(t *testing.T, ended []sdktrace.ReadOnlySpan, rep executor.Report) {
	t.Helper()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var root sdktrace.ReadOnlySpan
	for _, s := range ended {
		byID[s.SpanContext().SpanID()] = s
		if !s.Parent().IsValid() {
			if root != nil {
				t.Fatalf("two root spans: %s and %s", root.Name(), s.Name())
			}
			root = s
		}
	}
	if root == nil || root.Name() != "executor.kill" || root.Status().Code != codes.Error {
		t.Fatalf("root span %v, want executor.kill with an error status (Docker did not answer)", root)
	}
	var steps []string
	var killSpan sdktrace.ReadOnlySpan
	for _, s := range ended {
		p, ok := byID[s.Parent().SpanID()]
		if !ok {
			continue
		}
		if p == root {
			steps = append(steps, strings.TrimPrefix(s.Name(), "executor."))
		}
		if s.Name() == "fuseguard.kill" && p.Name() == "executor."+executor.StagePidfdKill {
			killSpan = s
		}
	}
	// Spans end in order; so do steps.
	if !slices.Equal(steps, stageNames(rep)) {
		t.Errorf("step spans %v, report steps %v", steps, stageNames(rep))
	}
	if killSpan == nil {
		t.Errorf("no fuseguard.kill span under executor.%s", executor.StagePidfdKill)
	}
	for _, kv := range root.Attributes() {
		if kv.Key == "fuseguard.outcome" && kv.Value.AsString() != string(rep.Outcome) {
			t.Errorf("root span outcome %s, report %s", kv.Value.AsString(), rep.Outcome)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
