package killer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// startSleeper starts a healthy process that dies at once on SIGKILL, and
// waits until its execve is done: /proc reads of a task mid-exec block on
// the exec lock, which would charge the exec to whichever kill came first.
func startSleeper(b *testing.B) *exec.Cmd {
	b.Helper()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	comm := fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		if c, err := os.ReadFile(comm); err == nil && strings.TrimSpace(string(c)) == "sleep" {
			return cmd
		}
	}
	b.Fatalf("pid %d never exec'd sleep", cmd.Process.Pid)
	return nil
}

// BenchmarkKillHealthy pairs, in every iteration, a plain kill(2)+wait4 with
// killer.Kill+wait4 of the same kind of process, and reports the ratio of
// the medians (goal ≤ 1.05): the price of fuseguard on a healthy kill.
func BenchmarkKillHealthy(b *testing.B) {
	testenv.RequireRoot(b)
	var plain, guarded []time.Duration
	ctx := context.Background()
	for b.Loop() {
		c := startSleeper(b)
		t0 := time.Now()
		_ = c.Process.Signal(syscall.SIGKILL)
		_ = c.Wait()
		plain = append(plain, time.Since(t0))

		c = startSleeper(b)
		t0 = time.Now()
		rep, err := Kill(ctx, Target{PID: c.Process.Pid}, Options{})
		_ = c.Wait()
		guarded = append(guarded, time.Since(t0))
		if err != nil || rep.Outcome != OutcomeExited {
			b.Fatalf("Kill: %v, outcome %s", err, rep.Outcome)
		}
	}
	mp, mg := median(plain), median(guarded)
	b.ReportMetric(float64(mp.Microseconds()), "plain-µs")
	b.ReportMetric(float64(mg.Microseconds()), "fuseguard-µs")
	b.ReportMetric(float64(mg)/float64(mp), "ratio")
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
