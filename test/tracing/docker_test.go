package tracing_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/jaeger"
	"github.com/fuseguard/fuseguard/test/loopback"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// dockerKillWindow is Docker 20.10's own wait after a SIGKILL (10 s for
// the exit event, then 2 s more) before it reports a failed kill; a
// rescue must end inside it.
const dockerKillWindow = 12 * time.Second

// service is the OTEL_SERVICE_NAME of the traced runtime and its hooks.
const service = "fuseguard-tracing-e2e"

// w2Cmd is W2 inside a container: the FUSE daemon reads its own mount.
// "; true" keeps sh as init, so init waits in zap_pid_ns_processes.
var w2Cmd = []string{"sh", "-c", "/fusefixture serve -mode read -mount /mnt -self-read; true"}

// tracedDocker is a dockerd whose environment points fuseguard at a
// Jaeger, with the wrapper registered as runtime "fuseguard" and, for the
// collector-down cases, as "fuseguard-down" (closed port) and
// "fuseguard-hung" (a listener that never answers), beside
// "fuseguard-off" (OTEL_SDK_DISABLED) as their baseline.
type tracedDocker struct {
	d        *dockerd.Daemon
	j        *jaeger.Jaeger
	image    string
	stateDir string
}

func startTracedDocker(t *testing.T) *tracedDocker {
	t.Helper()
	testenv.RequireLong(t)
	testenv.RequireFUSE(t)
	e := &tracedDocker{j: jaeger.Start(t), stateDir: testenv.StateDir(t)}
	// The others get fuseguard's default export timeout back.
	dflt := []string{"-u", "OTEL_EXPORTER_OTLP_TIMEOUT"}
	e.d = dockerd.Start(t, dockerd.Options{
		Runtimes: map[string]string{
			"fuseguard":      fgcmd.RuntimeScript(t, e.stateDir),
			"fuseguard-off":  fgcmd.RuntimeScript(t, e.stateDir, append(dflt, "OTEL_SDK_DISABLED=true")...),
			"fuseguard-down": fgcmd.RuntimeScript(t, e.stateDir, append(dflt, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+loopback.Closed(t))...),
			"fuseguard-hung": fgcmd.RuntimeScript(t, e.stateDir, append(dflt, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+loopback.Hung(t))...),
		},
		// dockerd's environment reaches containerd, the shims and so the
		// runtime. The export timeout is raised from fuseguard's 20 ms
		// because this machine runs dockerd, Jaeger and the test on two
		// cores; it also shows that the variable reaches the hooks.
		ExtraEnv: append(e.j.Env(service), "OTEL_EXPORTER_OTLP_TIMEOUT=2000"),
	})
	e.image = e.d.ImportImage(t, "fgtest/tracing:latest", map[string]string{"/fusefixture": fixture.Binary(t)})
	return e
}

// runW2 starts W2 under runtime and returns its id, FUSE connection and
// init pid; the connection is aborted at cleanup whatever happens.
func (e *tracedDocker) runW2(t *testing.T, ctx context.Context, runtime string) (string, uint32) {
	t.Helper()
	id, err := e.d.RunDetached(ctx, e.image, runtime, dockerd.FUSERunArgs(), w2Cmd...)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := e.d.WaitLog(ctx, id, "fusefixture: ready role=serve")
	if err != nil {
		t.Fatalf("%v\n--- container log ---\n%s", err, logs)
	}
	conn := uint32(fixture.ConnFromOutput(t, logs))
	e.d.OnCleanup(func() { _ = e.d.AbortFUSE(conn) })
	return id, conn
}

// killRescued runs `docker kill` of the wedged container and asserts it
// exits 137 inside Docker's window with a recovered outcome and no error
// in the runtime's log; it returns how long until the exit.
func (e *tracedDocker) killRescued(t *testing.T, ctx context.Context, id string) time.Duration {
	t.Helper()
	begin := time.Now()
	err := e.d.Kill(ctx, id)
	runtimeLog := func() string {
		return strings.Join(fgcmd.LogLines(filepath.Join(e.stateDir, "runtime.log"), id), "\n")
	}
	if err != nil {
		t.Fatalf("docker kill through fuseguard failed after %v: %v\nruntime.log:\n%s", time.Since(begin), err, runtimeLog())
	}
	st, err := e.d.WaitExited(ctx, id)
	took := time.Since(begin)
	if err != nil || st.Status != "exited" || st.ExitCode != 137 {
		t.Fatalf("after docker kill: %+v %v, want exited 137", st, err)
	}
	if took >= dockerKillWindow {
		t.Fatalf("exited %v after the kill, not inside Docker's %v window", took, dockerKillWindow)
	}
	lines := runtimeLog()
	if !strings.Contains(lines, `"outcome":"recovered"`) {
		t.Errorf("runtime.log: no recovered outcome for %.12s:\n%s", id, lines)
	}
	if strings.Contains(lines, `"level":"error"`) {
		t.Errorf("runtime.log: errors for %.12s:\n%s", id, lines)
	}
	if hooks := fgcmd.LogLines(filepath.Join(e.stateDir, "hook.log"), id); slices.ContainsFunc(hooks, func(l string) bool {
		return strings.Contains(l, `"level":"error"`)
	}) {
		t.Errorf("hook.log: errors for %.12s:\n%s", id, strings.Join(hooks, "\n"))
	}
	return took
}

// TestDockerTraces rescues W2 through the runtime wrapper under Docker
// with tracing on, and reads the story back from Jaeger: the create span
// with the hooks as children, and the kill-time trace whose fuseguard.kill
// aborts the container's connection, recovers, and links to the hook span
// the record stored. Then the same rescue with the collector down and
// hung: it still succeeds inside the same window.
func TestDockerTraces(t *testing.T) {
	e := startTracedDocker(t)

	t.Run("jaeger", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		id, conn := e.runW2(t, ctx, "fuseguard")
		took := e.killRescued(t, ctx, id)
		t.Logf("docker kill of W2, traced: exited after %v", took.Round(time.Millisecond))

		traces, err := e.j.WaitForSpans(ctx, service, func(ts []jaeger.Trace) bool {
			return hasAbortUnder(ts, id) && len(byContainer(ts, "fuseguard.hook.createRuntime", "container.id", id)) > 0
		})
		if err != nil {
			t.Fatal(err)
		}
		checkTraces(t, traces, id, conn)
	})

	// Tracing must never be in the way: the same rescue, inside the same
	// window, with tracing off and with the collector down or hung.
	for _, rt := range []string{"fuseguard-off", "fuseguard-down", "fuseguard-hung"} {
		t.Run(rt, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			id, _ := e.runW2(t, ctx, rt)
			took := e.killRescued(t, ctx, id)
			t.Logf("docker kill of W2, runtime %s: exited after %v", rt, took.Round(time.Millisecond))
		})
	}
}

// hasAbortUnder reports whether the traces hold a fuseguard.kill.abort
// under a fuseguard.kill of container id.
func hasAbortUnder(ts []jaeger.Trace, id string) bool {
	for _, k := range byContainer(ts, "fuseguard.kill", "container.id", id) {
		for _, a := range jaeger.Spans(ts, "fuseguard.kill.abort") {
			if a.Parent() == k.SpanID {
				return true
			}
		}
	}
	return false
}

// byContainer returns the spans named name whose tag key is value (all
// of them when key is "").
func byContainer(ts []jaeger.Trace, name, key, value string) []jaeger.Span {
	var out []jaeger.Span
	for _, s := range jaeger.Spans(ts, name) {
		if v, _ := s.Tag(key); key == "" || v == value {
			out = append(out, s)
		}
	}
	return out
}

func checkTraces(t *testing.T, ts []jaeger.Trace, id string, conn uint32) {
	t.Helper()
	spanByID := map[string]jaeger.Span{}
	for _, tr := range ts {
		for _, s := range tr.Spans {
			spanByID[s.SpanID] = s
		}
	}
	one := func(name string) jaeger.Span {
		t.Helper()
		s := byContainer(ts, name, "container.id", id)
		if len(s) != 1 {
			t.Fatalf("%d spans %s of container %.12s, want 1 (spans: %s)", len(s), name, id, dump(ts))
		}
		return s[0]
	}

	// Start time: the wrapper's create span, the hooks its children.
	create := one("fuseguard.runtime.create")
	hooks := map[string]jaeger.Span{}
	for _, name := range []string{"fuseguard.hook.createRuntime"} {
		h := one(name)
		if h.TraceID != create.TraceID || h.Parent() != create.SpanID {
			t.Errorf("%s: trace %s parent %q, want a child of the create span %s/%s", name, h.TraceID, h.Parent(), create.TraceID, create.SpanID)
		}
		if v, _ := h.Tag("process.pid"); v == nil || v == float64(0) {
			t.Errorf("%s: process.pid = %v", name, v)
		}
		hooks[h.SpanID] = h
		saved := false
		for _, s := range jaeger.Spans(ts, "fuseguard.record.save") {
			saved = saved || s.Parent() == h.SpanID
		}
		if !saved {
			t.Errorf("%s has no fuseguard.record.save child", name)
		}
	}

	// Kill time: runtime.kill → fuseguard.kill → the stages. (Docker may
	// kill again once the container is gone: a runtime.kill with nothing
	// to rescue.)
	k := one("fuseguard.kill")
	rk, ok := spanByID[k.Parent()]
	if !ok || rk.OperationName != "fuseguard.runtime.kill" || rk.TraceID != k.TraceID {
		t.Fatalf("fuseguard.kill parent %q (%s), want a fuseguard.runtime.kill", k.Parent(), rk.OperationName)
	}
	if v, _ := rk.Tag("container.id"); v != id {
		t.Errorf("fuseguard.runtime.kill container.id = %v, want %s", v, id)
	}
	if k.TraceID == create.TraceID {
		t.Error("the kill shares the start's trace; want its own trace, linked")
	}
	for span, want := range map[string]jaeger.Span{"fuseguard.kill": k, "fuseguard.runtime.kill": rk} {
		if v, _ := want.Tag("fuseguard.outcome"); v != "recovered" {
			t.Errorf("%s fuseguard.outcome = %v, want recovered", span, v)
		}
	}
	if v, _ := k.Tag("fuseguard.kernel_frame"); v == nil || v == "" {
		t.Errorf("fuseguard.kill has no fuseguard.kernel_frame: %+v", k.Tags)
	}
	links := k.Links()
	if len(links) != 1 {
		t.Fatalf("fuseguard.kill links %+v, want one, to the start-time hook span", links)
	}
	if h, ok := hooks[links[0].SpanID]; !ok || links[0].TraceID != create.TraceID {
		t.Errorf("fuseguard.kill links to %s/%s (%s), want a hook span of trace %s", links[0].TraceID, links[0].SpanID, h.OperationName, create.TraceID)
	}

	var stages []jaeger.Span
	for _, tr := range ts {
		for _, s := range tr.Spans {
			if s.TraceID == k.TraceID && s.Parent() == k.SpanID {
				stages = append(stages, s)
			}
		}
	}
	sort.Slice(stages, func(i, j int) bool { return stages[i].StartTime < stages[j].StartTime })
	var names []string
	for _, s := range stages {
		names = append(names, strings.TrimPrefix(s.OperationName, "fuseguard.kill."))
	}
	// The wrapper sends the SIGKILL itself (the container has a record and
	// its own PID namespace), holding init's mount table first.
	if want := []string{"open", "snapshot", "signal", "verify", "diagnose", "abort", "reverify"}; !slices.Equal(names, want) {
		t.Errorf("stages under fuseguard.kill %v, want %v", names, want)
	}
	for _, s := range stages {
		if s.OperationName != "fuseguard.kill.abort" {
			continue
		}
		if v, _ := s.Tag("fuseguard.conn"); v != float64(conn) {
			t.Errorf("abort fuseguard.conn = %v, want the container's connection %d", v, conn)
		}
		if v, _ := s.Tag("fuseguard.owned"); v != true {
			t.Errorf("abort fuseguard.owned = %v", v)
		}
		if v, _ := s.Tag("otel.status_code"); v == "ERROR" {
			t.Errorf("abort failed: %+v", s.Tags)
		}
	}
	if len(names) > 0 {
		if d := spanByID[stages[min(2, len(stages)-1)].SpanID]; d.OperationName == "fuseguard.kill.diagnose" {
			if v, _ := d.Tag("fuseguard.stuck_tid"); v == nil {
				t.Errorf("diagnose has no fuseguard.stuck_tid: %+v", d.Tags)
			}
		}
	}
}

func dump(ts []jaeger.Trace) string {
	var b strings.Builder
	for _, tr := range ts {
		for _, s := range tr.Spans {
			id, _ := s.Tag("container.id")
			fmt.Fprintf(&b, "\n  %s %s parent=%s %s id=%v", s.TraceID[:8], s.SpanID, s.Parent(), s.OperationName, id)
		}
	}
	return b.String()
}
