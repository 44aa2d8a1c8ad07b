package executor_test

import (
	"context"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/test/benchutil"
)

// BenchmarkKill compares, on one dockerd, the executor's Kill with a plain
// ContainerKill. Containers are started with the timer stopped.
//
//	healthy: Kill vs ContainerKill + inspect until stopped, interleaved,
//	         reported as the ratio of the medians (goal ≤ 1.10).
//	W2:      Kill's total seconds to recover a wedged container vs the
//	         seconds the plain ContainerKill takes to fail.
func BenchmarkKill(b *testing.B) {
	e := newEnv(b)
	k, _ := e.killer(b)
	k.Log = nil
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	b.Run("healthy", func(b *testing.B) {
		var exec, plain []time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			a, p := e.w4(b), e.w4(b)
			b.StartTimer()
			// Alternate the order, so that neither always runs on a
			// daemon that just finished the other's work.
			runExec := func() {
				begin := time.Now()
				rep, err := k.Kill(ctx, a.id)
				if err != nil || rep.Outcome != killer.OutcomeExited {
					b.Fatalf("Kill: %s, %v", rep.Outcome, err)
				}
				exec = append(exec, time.Since(begin))
			}
			runPlain := func() {
				begin := time.Now()
				if err := e.d.Client().ContainerKill(ctx, p.id, "KILL"); err != nil {
					b.Fatalf("ContainerKill: %v", err)
				}
				if _, err := e.d.WaitExited(ctx, p.id); err != nil {
					b.Fatal(err)
				}
				plain = append(plain, time.Since(begin))
			}
			if i%2 == 0 {
				runExec()
				runPlain()
			} else {
				runPlain()
				runExec()
			}
		}
		me, mp := benchutil.Median(exec), benchutil.Median(plain)
		b.ReportMetric(benchutil.Ratio(me, mp), "median-ratio")
		b.ReportMetric(float64(me)/1e6, "kill-ms")
		b.ReportMetric(float64(mp)/1e6, "plain-ms")
	})

	b.Run("W2", func(b *testing.B) {
		var exec, plain []time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			a, p := e.w2(b), e.w2(b)
			b.StartTimer()
			begin := time.Now()
			rep, err := k.Kill(ctx, a.id)
			if err != nil || rep.Outcome != killer.OutcomeRecovered {
				b.Fatalf("Kill of W2: %s, %v", rep.Outcome, err)
			}
			exec = append(exec, time.Since(begin))

			begin = time.Now()
			if err := e.d.Client().ContainerKill(ctx, p.id, "KILL"); err == nil {
				b.Fatal("plain ContainerKill of W2 succeeded")
			}
			plain = append(plain, time.Since(begin))
			b.StopTimer()
			e.abort(b, p.conn)
			if _, err := e.d.WaitExited(ctx, p.id); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		me, mp := benchutil.Median(exec), benchutil.Median(plain)
		b.ReportMetric(me.Seconds(), "kill-s")
		b.ReportMetric(mp.Seconds(), "plain-fail-s")
		b.ReportMetric(benchutil.Ratio(me, mp), "median-ratio")
	})
}
