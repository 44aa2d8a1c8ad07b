package wrapper

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/testenv"
)

func spanNames(rec *tracetest.SpanRecorder) []string {
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	return names
}

// TestInject patches a bundle as create does, keeps what it does not know,
// passes the hook env and the trace context, and records its span.
func TestInject(t *testing.T) {
	bundle := t.TempDir()
	conf := `{"ociVersion":"1.0.2","process":{"args":["sh"],"future":1},"root":{"path":"rootfs"},"org.example.new":{"a":[1]}}`
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	w := &Wrapper{Self: "/usr/local/bin/fuseguard", HookEnv: []string{"FUSEGUARD_STATE_DIR=/s"}, Tracer: tp.Tracer("t")}
	w.defaults()
	inv, err := oci.ParseRuncArgs([]string{"--root", "/r", "create", "--bundle", bundle, "c1"})
	if err != nil {
		t.Fatal(err)
	}
	w.inject(context.Background(), inv)
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["org.example.new"]; !ok {
		t.Error("unknown top-level field lost")
	}
	hooks, _ := got["hooks"].(map[string]any)
	for _, st := range []oci.Stage{oci.Poststart, oci.Poststop} {
		if list, ok := hooks[string(st)]; ok {
			t.Errorf("%s injected: %s (createRuntime only)", st, mustJSON(t, list))
		}
	}
	for _, st := range []oci.Stage{oci.CreateRuntime} {
		list, _ := hooks[string(st)].([]any)
		if len(list) != 1 || !strings.Contains(string(mustJSON(t, list)), `"FUSEGUARD_STATE_DIR=/s"`) {
			t.Errorf("%s hooks: %s", st, mustJSON(t, list))
		}
		// The hook's env carries the create span's trace context.
		if !strings.Contains(string(mustJSON(t, list)), "TRACEPARENT=00-") {
			t.Errorf("%s hook has no TRACEPARENT: %s", st, mustJSON(t, list))
		}
	}
	if names := spanNames(rec); !slices.Contains(names, "fuseguard.runtime.create") {
		t.Errorf("spans %v", names)
	}
	// A second create of the same bundle adds nothing.
	w.inject(context.Background(), inv)
	if b2, _ := os.ReadFile(filepath.Join(bundle, "config.json")); !bytes.Equal(b, b2) {
		t.Error("second injection changed config.json")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKillRescueFailureKeepsExitCode: the real runtime's kill succeeds
// (here `true`, which signals nothing) but init does not die; the rescue
// fails after its bounded wait, is logged, and the exit code stays 0.
func TestKillRescueFailureKeepsExitCode(t *testing.T) {
	testenv.RequireRoot(t)
	trueBin := testenv.RequireBinary(t, "true")
	sleep := exec.Command(testenv.RequireBinary(t, "sleep"), "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	store := record.Store{Dir: testenv.StateDir(t)}
	r, err := record.NewRecord(proc.NewFS(""), "alive", sleep.Process.Pid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Save(r); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	l := logrus.New()
	l.SetFormatter(&logrus.JSONFormatter{})
	l.SetOutput(&logs)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	w := &Wrapper{Runtime: trueBin, Store: store, VerifyTimeout: 100 * time.Millisecond, RecoverTimeout: 100 * time.Millisecond,
		Log: l, Tracer: tp.Tracer("t")}
	begin := time.Now()
	if code := w.Run(context.Background(), []string{"kill", "alive", "KILL"}); code != 0 {
		t.Fatalf("exit %d, want the runtime's 0", code)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("rescue took %v, not bounded by its timeouts", took)
	}
	if !strings.Contains(logs.String(), `"msg":"rescue failed"`) || !strings.Contains(logs.String(), `"outcome":"still-stuck"`) {
		t.Errorf("log: %s", logs.String())
	}
	// VerifyOnly: the wrapper itself never signals after a runtime's kill.
	if err := syscall.Kill(sleep.Process.Pid, 0); err != nil {
		t.Errorf("the wrapper signalled init itself: %v", err)
	}
	names := spanNames(rec)
	if !slices.Contains(names, "fuseguard.runtime.kill") || !slices.Contains(names, "fuseguard.kill") {
		t.Errorf("spans %v", names)
	}
}

// TestKillPassesTraceContext: the real runtime's kill runs as a child of
// the wrapper's kill span (TRACEPARENT in its env, an inherited one
// replaced).
func TestKillPassesTraceContext(t *testing.T) {
	sh := testenv.RequireBinary(t, "sh")
	dir := testenv.StateDir(t)
	out := filepath.Join(dir, "env")
	rt := filepath.Join(dir, "runtime")
	if err := os.WriteFile(rt, []byte("#!"+sh+"\nenv > "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	w := &Wrapper{Runtime: rt, Store: record.Store{Dir: dir},
		Env:    []string{"PATH=/usr/bin:/bin", "TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		Tracer: tp.Tracer("t")}
	// No record and a runtime without `state`: nothing to rescue, only the kill.
	if code := w.Run(context.Background(), []string{"kill", "gone", "KILL"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var kill []string
	for _, s := range rec.Ended() {
		if s.Name() == "fuseguard.runtime.kill" {
			kill = append(kill, telemetry.FormatTraceParent(s.SpanContext()))
		}
	}
	if len(kill) != 1 {
		t.Fatalf("%d runtime.kill spans", len(kill))
	}
	if n := strings.Count(string(env), "TRACEPARENT="); n != 1 || !strings.Contains(string(env), "TRACEPARENT="+kill[0]+"\n") {
		t.Errorf("runtime env has TRACEPARENT %d times, want once the kill span's %s:\n%s", n, kill[0], env)
	}
}

// TestKillRefusedByRuntime: the real runtime's kill fails (here `false`,
// as runc's "container not running"). An init that is alive and not
// exiting was not signalled, so it is left alone and the exit code is the
// runtime's; an init already exiting (a zombie here; in CRI's stop, a PID
// namespace init waiting in zap_pid_ns_processes) is verified all the
// same, still with the runtime's exit code.
func TestKillRefusedByRuntime(t *testing.T) {
	testenv.RequireRoot(t)
	falseBin := testenv.RequireBinary(t, "false")
	alive := exec.Command(testenv.RequireBinary(t, "sleep"), "60")
	zombie := exec.Command(testenv.RequireBinary(t, "sleep"), "0.3")
	for _, c := range []*exec.Cmd{alive, zombie} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	fs := proc.NewFS("")
	store := record.Store{Dir: testenv.StateDir(t)}
	for id, pid := range map[string]int{"alive": alive.Process.Pid, "zombie": zombie.Process.Pid} {
		r, err := record.NewRecord(fs, id, pid, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	// Recorded while it runs (as the createRuntime hook does); not
	// waited for, it then stays a zombie until the cleanup.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := fs.Stat(context.Background(), zombie.Process.Pid)
		if err == nil && st.State == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not a zombie: %+v, %v", zombie.Process.Pid, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, tc := range []struct {
		id      string
		rescued bool
	}{{"alive", false}, {"zombie", true}} {
		t.Run(tc.id, func(t *testing.T) {
			var logs bytes.Buffer
			l := logrus.New()
			l.SetFormatter(&logrus.JSONFormatter{})
			l.SetOutput(&logs)
			w := &Wrapper{Runtime: falseBin, Store: store, VerifyTimeout: 100 * time.Millisecond, RecoverTimeout: 100 * time.Millisecond, Log: l}
			if code := w.Run(context.Background(), []string{"kill", tc.id, "9"}); code != 1 {
				t.Fatalf("exit %d, want the runtime's 1", code)
			}
			refused := strings.Contains(logs.String(), "refused to kill an init that is still exiting")
			verified := strings.Contains(logs.String(), `"outcome":`)
			if refused != tc.rescued || verified != tc.rescued {
				t.Errorf("refused logged %v, verified %v; want %v:\n%s", refused, verified, tc.rescued, logs.String())
			}
		})
	}
	if err := syscall.Kill(alive.Process.Pid, 0); err != nil {
		t.Errorf("the healthy init was signalled: %v", err)
	}
}
