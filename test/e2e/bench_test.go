package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/benchutil"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fixture"
)

// BenchmarkDocker measures the wrapper against plain runc on one private
// dockerd, side by side in the same run:
//
//   - run: `docker run --rm` of a trivial container, median of each and
//     their ratio (goal ≤ 1.10);
//   - kill-healthy: `docker kill` of a running container, same pairing;
//   - kill-W2: `docker kill` of a W2 self-deadlock: seconds until it
//     succeeds through fuseguard, and the seconds after which plain runc's
//     kill fails (once per run: it costs Docker's 12 s).
//
// Run it with, for example, -benchtime 10x; ns/op is not meaningful here,
// the reported metrics are.
func BenchmarkDocker(b *testing.B) {
	e := startDocker(b)

	b.Run("run", func(b *testing.B) {
		fg, rc := pairs(b, b.N, func(runtime string) time.Duration {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			begin := time.Now()
			if _, _, err := e.d.Docker(ctx, "run", "--rm", "--network", "none", "--runtime", runtime, e.image, "true"); err != nil {
				b.Fatal(err)
			}
			return time.Since(begin)
		})
		report(b, fg, rc)
	})

	b.Run("kill-healthy", func(b *testing.B) {
		fg, rc := pairs(b, b.N, func(runtime string) time.Duration {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			id, err := e.d.RunDetached(ctx, e.image, runtime, nil, "sleep", "1000")
			if err != nil {
				b.Fatal(err)
			}
			begin := time.Now()
			if err := e.d.Kill(ctx, id); err != nil {
				b.Fatal(err)
			}
			took := time.Since(begin)
			if err := e.d.Rm(ctx, id, true); err != nil {
				b.Fatal(err)
			}
			return took
		})
		report(b, fg, rc)
	})

	b.Run("kill-W2", func(b *testing.B) {
		var fg []time.Duration
		for i := 0; i < min(b.N, 3); i++ {
			fg = append(fg, e.killW2(b, "fuseguard"))
		}
		base := e.killW2(b, "runc")
		b.ReportMetric(benchutil.Median(fg).Seconds(), "fuseguard-s")
		b.ReportMetric(base.Seconds(), "runc-fail-s")
	})
}

// pairs times f with runtime fuseguard and runc, alternately, n times each.
func pairs(b *testing.B, n int, f func(runtime string) time.Duration) (fg, rc []time.Duration) {
	b.Helper()
	for i := 0; i < n; i++ {
		fg = append(fg, f("fuseguard"))
		rc = append(rc, f("runc"))
	}
	return fg, rc
}

func report(b *testing.B, fg, rc []time.Duration) {
	mf, mr := benchutil.Median(fg), benchutil.Median(rc)
	b.ReportMetric(float64(mf)/float64(time.Millisecond), "fuseguard-ms")
	b.ReportMetric(float64(mr)/float64(time.Millisecond), "runc-ms")
	b.ReportMetric(benchutil.Ratio(mf, mr), "ratio")
}

// killW2 arms a W2 (read) container under runtime and times `docker
// kill`: until success through fuseguard, until Docker's failure under
// runc. The connection is aborted afterwards either way.
func (e *dockerEnv) killW2(b *testing.B, runtime string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := e.d.RunDetached(ctx, e.image, runtime, dockerd.FUSERunArgs(), w2Cmd("read")...)
	if err != nil {
		b.Fatal(err)
	}
	logs, err := e.d.WaitLog(ctx, id, "fusefixture: ready role=serve")
	if err != nil {
		b.Fatalf("%v\n%s", err, logs)
	}
	conn := uint32(fixture.ConnFromOutput(b, logs))
	e.d.OnCleanup(func() { _ = e.d.AbortFUSE(conn) })
	begin := time.Now()
	err = e.d.Kill(ctx, id)
	took := time.Since(begin)
	if (err == nil) != (runtime == "fuseguard") {
		b.Fatalf("docker kill of W2 under %s: %v", runtime, err)
	}
	_ = e.d.AbortFUSE(conn)
	if _, err := e.d.WaitExited(ctx, id); err != nil {
		b.Fatal(err)
	}
	if err := e.d.Rm(ctx, id, true); err != nil {
		b.Fatal(err)
	}
	return took
}
