package watch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/benchutil"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// BenchmarkWatcher runs the real `fuseguard watch` process over idle
// containers (each a sleep that is PID 1 of its own PID namespace), once
// with the kernel's exit notifications (the default) and once polling
// (--exit-events off), and reports for each its CPU as a share of one core
// and its RSS, with the same watcher over no container as the baseline,
// then the detection latency of wedged W2 containers, from the SIGKILL to
// the detection (p50/p99 over the wedges; the goal is the grace + 1 s).
// With FUSEGUARD_BENCH_SUMMARY=1 it prints one line per figure with its
// goal (bench/watcher.sh).
//
//	go test -run '^$' -bench 'Watcher$' -benchtime 1x ./internal/watch
//
// FUSEGUARD_BENCH_CONTAINERS (default 1000), FUSEGUARD_BENCH_SECONDS
// (default 10; more than the 30 s safety check and rescan to include
// them), FUSEGUARD_BENCH_WEDGES (default 8; 0 skips the latency) and
// FUSEGUARD_BENCH_WATCH_ARGS (extra flags of the watcher) tune it.
func BenchmarkWatcher(b *testing.B) {
	testenv.RequireFUSE(b)
	n := envInt("FUSEGUARD_BENCH_CONTAINERS", 1000)
	secs := envInt("FUSEGUARD_BENCH_SECONDS", 10)
	wedges := envInt("FUSEGUARD_BENCH_WEDGES", 8)
	summary := os.Getenv("FUSEGUARD_BENCH_SUMMARY") == "1"
	bin := fgcmd.Binary(b)
	type mode struct {
		name string
		args []string
	}
	modes := []mode{{"events", nil}, {"polling", []string{"--exit-events", ExitEventsOff}}}
	// Each measurement runs as a sub-benchmark: its containers and its
	// watcher are gone before the next one starts.
	run := func(name string, f func(b *testing.B)) {
		if !b.Run(name, f) {
			b.FailNow()
		}
	}
	for i := 0; i < b.N; i++ {
		var base idleFigures
		run("baseline", func(b *testing.B) {
			base = measureIdle(b, bin, 0, min(secs, 10), "")
			b.Logf("baseline (0 containers): cpu %.3f%% of a core, rss %.1f MiB", base.cpu*100, base.rssMiB)
		})
		idle := map[string]idleFigures{}
		lat := map[string][]time.Duration{}
		for _, m := range modes {
			run("idle-"+m.name, func(b *testing.B) {
				load := measureIdle(b, bin, n, secs, m.name, m.args...)
				idle[m.name] = load
				b.Logf("%s, %d containers: cpu %.3f%% of a core, rss %.1f MiB (tracked after %s; exit events %s)", m.name, n, load.cpu*100, load.rssMiB, load.ready.Round(time.Millisecond), load.source)
				b.ReportMetric(load.cpu*100, "cpu%")
				b.ReportMetric(load.rssMiB, "rss-MiB")
				b.ReportMetric(load.cpu/max(base.cpu, 1e-6), "cpu-x-baseline")
			})
			if wedges == 0 {
				continue
			}
			run("detect-"+m.name, func(b *testing.B) {
				l := detectionLatency(b, bin, n, wedges, m.args...)
				lat[m.name] = l
				p50, p99 := benchutil.Percentile(l, 0.50), benchutil.Percentile(l, 0.99)
				b.Logf("%s: detection after the kill over %d wedges (grace %s): p50 %s p99 %s (all %v)", m.name, len(l), DefaultGrace, p50.Round(time.Millisecond), p99.Round(time.Millisecond), l)
				b.ReportMetric(float64(p50.Milliseconds()), "detect-p50-ms")
				b.ReportMetric(float64(p99.Milliseconds()), "detect-p99-ms")
			})
		}
		ev, poll := idle["events"], idle["polling"]
		if !summary {
			continue
		}
		fmt.Printf("watcher idle cpu: %.3f %% of a core at %d containers over %d s (polling: %.3f %%; goal ≤ 0.1 %%)\n", ev.cpu*100, n, secs, poll.cpu*100)
		fmt.Printf("watcher rss: %.1f MiB (polling: %.1f MiB; no container: %.1f MiB; goal ≤ 40 MiB)\n", ev.rssMiB, poll.rssMiB, base.rssMiB)
		fmt.Printf("watcher exit source: %s (polling run: %s)\n", ev.source, poll.source)
		if wedges > 0 {
			le, lp := lat["events"], lat["polling"]
			fmt.Printf("watcher detection p50: %s after the kill over %d exits (polling: %s; grace %s)\n", benchutil.Percentile(le, 0.5).Round(time.Millisecond), len(le), benchutil.Percentile(lp, 0.5).Round(time.Millisecond), DefaultGrace)
			fmt.Printf("watcher detection p99: %s after the kill over %d exits (polling: %s; goal ≤ grace + 1 s = %s)\n", benchutil.Percentile(le, 0.99).Round(time.Millisecond), len(le), benchutil.Percentile(lp, 0.99).Round(time.Millisecond), DefaultGrace+time.Second)
		}
	}
}

type idleFigures struct {
	cpu    float64 // share of one core
	rssMiB float64
	ready  time.Duration
	source string // the exit event source the watcher logged
}

// measureIdle starts n idle containers, records them, runs the watcher
// with extra flags and measures it over secs seconds once it tracks them
// all. A mode other than "" names the run in errors.
func measureIdle(b *testing.B, bin string, n, secs int, mode string, extra ...string) idleFigures {
	b.Helper()
	dir := testenv.StateDir(b)
	startIdle(b, dir, n)
	w, lines := startWatchProcess(b, bin, dir, extra...)
	start := time.Now()
	started := fgcmd.WaitLine(b, lines, "watcher started", 10*time.Second).Text
	source := ExitEventsPolling
	if strings.Contains(started, `"exit_events":"`+ExitEventsTaskstats+`"`) {
		source = ExitEventsTaskstats
	}
	if mode == "events" && source != ExitEventsTaskstats {
		b.Logf("the watcher polls: the kernel's exit notifications are unavailable here (%s)", started)
	}
	for tracked := 0; tracked < n; {
		fgcmd.WaitLine(b, lines, "tracking container", 30*time.Second)
		tracked++
	}
	ready := time.Since(start)
	go func() {
		for range lines { // keep the watcher's stderr flowing
		}
	}()
	time.Sleep(time.Second) // let the start-up settle
	t0, c0 := time.Now(), cpuTicks(b, w.Process.Pid)
	time.Sleep(time.Duration(secs) * time.Second)
	t1, c1 := time.Now(), cpuTicks(b, w.Process.Pid)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	return idleFigures{
		cpu:    float64(c1-c0) / 100 / t1.Sub(t0).Seconds(), // USER_HZ is 100 on Linux
		rssMiB: float64(statusKB(string(st), "VmRSS:")) / 1024,
		ready:  ready,
		source: source,
	}
}

// detectionLatency wedges W2 containers next to n idle ones, under a
// watcher with extra flags, and returns how long after the SIGKILL each
// detection came.
func detectionLatency(b *testing.B, bin string, n, wedges int, extra ...string) []time.Duration {
	b.Helper()
	dir := testenv.StateDir(b)
	startIdle(b, dir, n)
	_, lines := startWatchProcess(b, bin, dir, extra...)
	fgcmd.WaitLine(b, lines, "watcher started", 10*time.Second)
	var out []time.Duration
	for i := 0; i < wedges; i++ {
		c := fixture.W2(b, "read")
		id := "wedge-" + strconv.Itoa(i)
		rec := saveRecord(b, dir, id, c.InitPID)
		fgcmd.WaitLine(b, lines, `"container":"`+rec.ID+`"`, 10*time.Second)
		killed := time.Now()
		if err := c.Kill(); err != nil {
			b.Fatal(err)
		}
		at := fgcmd.WaitLine(b, lines, "stuck exit detected", 10*time.Second).At
		out = append(out, at.Sub(killed))
		select {
		case <-c.Exited():
		case <-time.After(5 * time.Second):
			b.Fatalf("wedge %d not rescued", i)
		}
	}
	return out
}

// startIdle starts n sleeps, each PID 1 of new PID and mount namespaces, and
// records them in dir.
func startIdle(b *testing.B, dir string, n int) {
	b.Helper()
	sleep := testenv.RequireBinary(b, "sleep")
	cmds := make([]*exec.Cmd, 0, n)
	b.Cleanup(func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
	})
	for i := 0; i < n; i++ {
		c := exec.Command(sleep, "infinity")
		// A mount namespace of its own, as a container has: one shared with
		// the host would wake the watcher on every host mount change.
		c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			b.Fatalf("start idle container %d: %v", i, err)
		}
		cmds = append(cmds, c)
		saveRecord(b, dir, "idle-"+strconv.Itoa(i), c.Process.Pid)
	}
}

// startWatchProcess runs `fuseguard watch` on dir with extra flags, JSON
// logs on a channel.
func startWatchProcess(b *testing.B, bin, dir string, extra ...string) (*exec.Cmd, <-chan fgcmd.Line) {
	b.Helper()
	args := append([]string{"watch", "--state-dir", dir, "--log-format", "json"}, strings.Fields(os.Getenv("FUSEGUARD_BENCH_WATCH_ARGS"))...)
	return fgcmd.StartLogged(b, bin, append(args, extra...)...)
}

func cpuTicks(b *testing.B, pid int) uint64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	ut, _ := strconv.ParseUint(f[11], 10, 64) // field 14
	st, _ := strconv.ParseUint(f[12], 10, 64) // field 15
	return ut + st
}

func statusKB(status, key string) int {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n >= 0 {
		return n
	}
	return def
}

// BenchmarkWatcherChurn runs the real `fuseguard watch` process over idle
// containers and one that mounts and unmounts a tmpfs in a tight loop in
// its own mount namespace, and reports the watcher's CPU as a ratio to the
// same setup with that container idle, measured in the same run; then the
// same storm with coalescing off (--mount-read-interval 1ns) as a ratio to
// the coalesced one.
//
//	go test -run '^$' -bench WatcherChurn -benchtime 1x ./internal/watch
//
// FUSEGUARD_BENCH_CONTAINERS (default 100) and FUSEGUARD_BENCH_SECONDS
// (default 5) tune it.
func BenchmarkWatcherChurn(b *testing.B) {
	testenv.RequireRoot(b)
	sh := testenv.RequireBinary(b, "busybox")
	n := envInt("FUSEGUARD_BENCH_CONTAINERS", 100)
	secs := envInt("FUSEGUARD_BENCH_SECONDS", 5)
	bin := fgcmd.Binary(b)
	for i := 0; i < b.N; i++ {
		idle := measureChurn(b, bin, sh, n, secs, false)
		churn := measureChurn(b, bin, sh, n, secs, true)
		raw := measureChurn(b, bin, sh, n, secs, true, "--mount-read-interval", "1ns")
		b.Logf("idle: cpu %.3f%% of a core", idle.cpu*100)
		b.Logf("storm, coalesced: cpu %.3f%% of a core, %.0f mount-table changes/s", churn.cpu*100, churn.changes)
		b.Logf("storm, not coalesced: cpu %.3f%% of a core, %.0f mount-table changes/s", raw.cpu*100, raw.changes)
		b.ReportMetric(churn.cpu*100, "churn-cpu%")
		b.ReportMetric(churn.cpu/max(idle.cpu, 1e-6), "churn-cpu-x-idle")
		b.ReportMetric(raw.cpu/max(churn.cpu, 1e-6), "uncoalesced-x-coalesced")
	}
}

type churnFigures struct {
	cpu     float64 // share of one core
	changes float64 // mount-table changes per second made by the churning container
}

// measureChurn starts n idle containers and one whose loop mounts and
// unmounts a tmpfs while churn (else it waits), records them, runs the
// watcher with extra flags and measures it over secs seconds.
func measureChurn(b *testing.B, bin, sh string, n, secs int, churn bool, extra ...string) churnFigures {
	b.Helper()
	dir := testenv.StateDir(b)
	startIdle(b, dir, n)
	scratch := b.TempDir()
	script := `while :; do busybox sleep 1000; done`
	if churn {
		script = `busybox mkdir "$D/t"
i=0
while :; do
  busybox mount -t tmpfs churn "$D/t" && busybox umount "$D/t"
  i=$((i+1))
  [ $((i % 20)) = 0 ] && echo "$i" > "$D/count"
done`
	}
	c := exec.Command(sh, "sh", "-c", script)
	c.Env = append(os.Environ(), "D="+scratch)
	c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = c.Process.Kill() // init: the namespace and its mounts go with it
		_ = c.Wait()
	})
	saveRecord(b, dir, "churn", c.Process.Pid)
	w, lines := startWatchProcess(b, bin, dir, extra...)
	fgcmd.WaitLine(b, lines, "watcher started", 10*time.Second)
	for tracked := 0; tracked <= n; tracked++ {
		fgcmd.WaitLine(b, lines, "tracking container", 30*time.Second)
	}
	go func() {
		for range lines { // keep the watcher's stderr flowing
		}
	}()
	time.Sleep(time.Second)
	count := func() int {
		raw, _ := os.ReadFile(filepath.Join(scratch, "count"))
		v, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		return v
	}
	t0, c0, m0 := time.Now(), cpuNanos(b, w.Process.Pid), count()
	time.Sleep(time.Duration(secs) * time.Second)
	t1, c1, m1 := time.Now(), cpuNanos(b, w.Process.Pid), count()
	el := t1.Sub(t0).Seconds()
	return churnFigures{
		cpu:     float64(c1-c0) / 1e9 / el,
		changes: 2 * float64(m1-m0) / el, // a mount and an unmount per round
	}
}

// cpuNanos is the CPU time of pid's threads in ns (schedstat's first
// field): the 10 ms ticks of /proc/PID/stat are too coarse for a watcher
// that is mostly asleep. The watcher's threads live as long as it does.
func cpuNanos(b *testing.B, pid int) uint64 {
	b.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatal(err)
	}
	var sum uint64
	for _, t := range tasks {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread ended
		}
		if ns, ok := parseRunTime(raw); ok {
			sum += ns
		}
	}
	return sum
}
