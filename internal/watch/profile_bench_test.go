package watch

import (
	"context"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// BenchmarkWatcherLoop runs the watcher's loop in this process over idle
// containers (each a sleep that is PID 1 of its own PID namespace) with the
// default options and reports the process's CPU over the window as a share
// of one core; with FUSEGUARD_BENCH_CPUPROFILE set it writes a pprof CPU
// profile of that window (sampled at 1 kHz: the loop is mostly asleep)
// there. It is where the watcher's idle CPU goes, measured:
//
//	FUSEGUARD_BENCH_CPUPROFILE=/tmp/cpu.out go test -run '^$' -bench WatcherLoop -benchtime 1x ./internal/watch
//	go tool pprof -top watch.test /tmp/cpu.out
//
// FUSEGUARD_BENCH_CONTAINERS (default 1000), FUSEGUARD_BENCH_SECONDS
// (default 20) and FUSEGUARD_BENCH_EXIT_EVENTS ("off": polling) tune it.
func BenchmarkWatcherLoop(b *testing.B) {
	testenv.RequireRoot(b)
	n := envInt("FUSEGUARD_BENCH_CONTAINERS", 1000)
	secs := envInt("FUSEGUARD_BENCH_SECONDS", 20)
	for i := 0; i < b.N; i++ {
		dir := testenv.StateDir(b)
		startIdle(b, dir, n)
		ev := newEvents()
		log := logrus.New()
		log.SetOutput(io.Discard)
		w, err := New(Options{StateDir: dir, Log: log, OnEvent: ev.add, ExitEvents: os.Getenv("FUSEGUARD_BENCH_EXIT_EVENTS")})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		if _, ok := ev.waitOK(EventReady, "", 30*time.Second); !ok {
			cancel()
			b.Fatal("watcher not ready")
		}
		time.Sleep(time.Second) // let the start-up settle
		if path := os.Getenv("FUSEGUARD_BENCH_CPUPROFILE"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			runtime.SetCPUProfileRate(1000)
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Logf("profile: %v", err) // the rate was set: the profile still starts
			}
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
		t0, c0 := time.Now(), processCPU(b)
		time.Sleep(time.Duration(secs) * time.Second)
		t1, c1 := time.Now(), processCPU(b)
		reads := 0
		for _, e := range ev.all() {
			if e.Kind == EventMountRead && !e.Time.Before(t0) && e.Time.Before(t1) {
				reads++
			}
		}
		pprof.StopCPUProfile()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cpu := (c1 - c0).Seconds() / t1.Sub(t0).Seconds()
		b.Logf("%d containers, exit events %q: cpu %.3f%% of a core, %d mount-table reads in the window", n, os.Getenv("FUSEGUARD_BENCH_EXIT_EVENTS"), cpu*100, reads)
		b.ReportMetric(cpu*100, "cpu%")
	}
}

// processCPU is the user and system time of this process so far.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
