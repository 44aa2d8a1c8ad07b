package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/benchutil"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/jaeger"
	"github.com/fuseguard/fuseguard/test/loopback"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// collectors are the tracing setups the benchmarks compare with tracing
// off: each returns the OTEL_* environment of fuseguard.
func collectors(b *testing.B) map[string]func() []string {
	return map[string]func() []string{
		"collector-down": func() []string { return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + loopback.Closed(b)} },
		"collector-hung": func() []string { return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + loopback.Hung(b)} },
		"collector-up": func() []string {
			testenv.RequireLong(b)
			return jaeger.Start(b).Env("fuseguard-bench")
		},
	}
}

// benchVsOff runs, in every iteration, op with tracing off and then with
// env, and reports the median difference (ms-over-off, the bound is
// 20 ms) and the ratio of the medians (x-off).
func benchVsOff(b *testing.B, env []string, op func(env []string) time.Duration) {
	off := []string{"OTEL_SDK_DISABLED=true"}
	var base, traced []time.Duration
	for b.Loop() {
		base = append(base, op(off))
		traced = append(traced, op(env))
	}
	mb, mt := benchutil.Median(base), benchutil.Median(traced)
	b.ReportMetric(float64(mb)/float64(time.Millisecond), "off-ms")
	b.ReportMetric(float64(mt)/float64(time.Millisecond), "traced-ms")
	b.ReportMetric(float64(mt-mb)/float64(time.Millisecond), "ms-over-off")
	b.ReportMetric(benchutil.Ratio(mt, mb), "x-off")
}

// command runs the fuseguard binary with env on top of the test's
// environment (its own OTEL_* removed) and returns how long it took.
func command(b *testing.B, env []string, stdin []byte, args ...string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, fgcmd.Binary(b), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "TRACEPARENT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	begin := time.Now()
	err := cmd.Run()
	took := time.Since(begin)
	if err != nil {
		b.Fatalf("fuseguard %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return took
}

// BenchmarkHookRun times one `fuseguard hook createRuntime` process, as runc
// runs it at every container start, recording a live process: tracing off
// against the collector down (closed port), hung (never answers) and up
// (Jaeger), paired in every iteration.
func BenchmarkHookRun(b *testing.B) {
	testenv.RequireRoot(b)
	sleep := exec.Command("sleep", "1000")
	if err := sleep.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	state, err := json.Marshal(specs.State{Version: specs.Version, ID: "bench", Status: specs.StateCreating,
		Pid: sleep.Process.Pid, Bundle: "/bench"})
	if err != nil {
		b.Fatal(err)
	}
	dir := testenv.StateDir(b)
	for name, setup := range collectors(b) {
		b.Run(name, func(b *testing.B) {
			env := append(setup(), record.EnvStateDir+"="+dir)
			benchVsOff(b, env, func(env []string) time.Duration {
				return command(b, append(env, record.EnvStateDir+"="+dir), state, "hook", "createRuntime")
			})
		})
	}
}

// BenchmarkKillW2 times one `fuseguard kill` process rescuing a wedged W2
// container (verify timeout 200 ms, the floor of every run): tracing off
// against the collector down, hung and up, paired in every iteration.
func BenchmarkKillW2(b *testing.B) {
	testenv.RequireFUSE(b)
	for name, setup := range collectors(b) {
		b.Run(name, func(b *testing.B) {
			benchVsOff(b, setup(), func(env []string) time.Duration {
				b.StopTimer()
				c := fixture.W2(b, "read")
				b.StartTimer()
				took := command(b, env, nil, "kill", "--verify-timeout", "200ms", fmt.Sprint(c.InitPID))
				<-c.Exited()
				return took
			})
		})
	}
}
