package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/benchutil"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// Goals of issue 14 for the healthy path, as ratios to plain runc.
const (
	goalRun  = 1.05
	goalKill = 1.10
)

// startHealthyDocker starts a dockerd that knows runtime "fuseguard" as a
// node registers it (daemon.json names the fuseguard-runtime link, no
// runtimeArgs, so no shell script in between), its state directory on a
// tmpfs as /run/fuseguard is on a systemd node, given through dockerd's
// environment. TestMain's FUSEGUARD_WATCHER=0 keeps the node watcher off:
// bench/watcher.sh measures it.
func startHealthyDocker(b *testing.B) *dockerEnv {
	b.Helper()
	e := &dockerEnv{stateDir: testenv.TmpfsDir(b)}
	runc := testenv.RequireBinary(b, "runc")
	e.traceDir = b.TempDir()
	runtimes := map[string]string{
		"fuseguard":        fgcmd.Runtime(b),
		"fuseguard-traced": tracedRuntime(b, e.traceDir, "fuseguard-traced", fgcmd.Runtime(b)),
		"runc-traced":      tracedRuntime(b, e.traceDir, "runc-traced", runc),
	}
	if before := os.Getenv(envBenchBefore); before != "" {
		runtimes[runtimeBefore] = runtimeLink(b, before)
	}
	e.d, e.image = startDaemonOpts(b, runtimes, []string{record.EnvStateDir + "=" + e.stateDir})
	return e
}

// envBenchBefore names another fuseguard binary (an earlier build) that
// BenchmarkHealthy measures as runtime runtimeBefore, in the same
// alternation: a before/after comparison that this machine's noise does
// not drown.
const (
	envBenchBefore = "FUSEGUARD_BENCH_BEFORE"
	runtimeBefore  = "fuseguard-before"
)

// runtimeLink makes a fuseguard-runtime link to bin in a directory of its
// own, the name under which bin acts as the runtime wrapper.
func runtimeLink(b *testing.B, bin string) string {
	b.Helper()
	abs, err := filepath.Abs(bin)
	if err != nil {
		b.Fatal(err)
	}
	link := filepath.Join(b.TempDir(), "fuseguard-runtime")
	if err := os.Symlink(abs, link); err != nil {
		b.Fatal(err)
	}
	return link
}

// BenchmarkHealthy is issue 14's Docker rows, each against plain runc on
// the same dockerd, pairs alternated, medians (run with -benchtime 12x):
//
//   - run: `docker run --rm … true` (goal ≤ 1.05);
//   - kill: `docker kill` of a running `sleep` (goal ≤ 1.10);
//
// then the per-call breakdown of both (printBreakdown). With
// FUSEGUARD_BENCH_BEFORE=<an earlier fuseguard binary> that build runs in
// every round too (before-ms, before-ratio against runc).
//
// ns/op is not meaningful here; the reported metrics are.
func BenchmarkHealthy(b *testing.B) {
	e := startHealthyDocker(b)
	// One container each first: the first start pays page cache and
	// dockerd's lazy set-up, which belong to neither side.
	for _, rt := range []string{"fuseguard", "runc"} {
		e.runTrue(b, rt)
	}
	_, before := os.LookupEnv(envBenchBefore)
	for _, op := range []struct {
		name string
		f    func(*testing.B, string) time.Duration
		goal float64
	}{{"run", e.runTrue, goalRun}, {"kill", e.killSleep, goalKill}} {
		b.Run(op.name, func(b *testing.B) {
			var fg, rc, fb []time.Duration
			for b.Loop() {
				fg = append(fg, op.f(b, "fuseguard"))
				rc = append(rc, op.f(b, "runc"))
				if before {
					fb = append(fb, op.f(b, runtimeBefore))
				}
			}
			reportGoal(b, fg, rc, op.goal)
			if before {
				b.ReportMetric(float64(benchutil.Median(fb))/float64(time.Millisecond), "before-ms")
				b.ReportMetric(benchutil.Ratio(benchutil.Median(fb), benchutil.Median(rc)), "before-ratio")
			}
		})
	}
	e.printBreakdown(b, e.traceDir)
}

// runTrue times `docker run --rm … true` under runtime.
func (e *dockerEnv) runTrue(b *testing.B, runtime string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	if _, _, err := e.d.Docker(ctx, "run", "--rm", "--network", "none", "--runtime", runtime, e.image, "true"); err != nil {
		b.Fatalf("docker run under %s: %v", runtime, err)
	}
	return time.Since(begin)
}

// killSleep starts a `sleep` under runtime and times its `docker kill`
// (the removal is not timed).
func (e *dockerEnv) killSleep(b *testing.B, runtime string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := e.d.RunDetached(ctx, e.image, runtime, nil, "sleep", "1000")
	if err != nil {
		b.Fatalf("docker run under %s: %v", runtime, err)
	}
	begin := time.Now()
	if err := e.d.Kill(ctx, id); err != nil {
		b.Fatalf("docker kill under %s: %v", runtime, err)
	}
	took := time.Since(begin)
	if err := e.d.Rm(ctx, id, true); err != nil {
		b.Fatal(err)
	}
	return took
}

// reportGoal reports both medians, their ratio and the goal it is held to.
func reportGoal(b *testing.B, fg, rc []time.Duration, goal float64) {
	report(b, fg, rc)
	b.ReportMetric(goal, "goal")
}
