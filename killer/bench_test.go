package killer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/benchutil"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
	"golang.org/x/sys/unix"
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

// BenchmarkKillHealthy runs, in every iteration, a plain kill(2)+wait4, the
// safe floor (safeFloorKill+wait4) and killer.Kill+wait4 of the same kind
// of process, and reports the ratios of the medians: killer.Kill to the
// plain kill (goal ≤ 1.05: the price of fuseguard on a healthy kill), the
// floor to the plain kill (the price of pid-reuse safety and of the
// ownership proof, which no kill of fuseguard's may drop), and killer.Kill
// to the floor (what its own machinery adds).
func BenchmarkKillHealthy(b *testing.B) {
	testenv.RequireRoot(b)
	var plain, floor, guarded, reap, bookkeeping []time.Duration
	stages := map[string][]time.Duration{}
	ctx := context.Background()
	for b.Loop() {
		c := startSleeper(b)
		t0 := time.Now()
		_ = c.Process.Signal(syscall.SIGKILL)
		_ = c.Wait()
		plain = append(plain, time.Since(t0))

		c = startSleeper(b)
		t0 = time.Now()
		safeFloorKill(b, c.Process.Pid)
		_ = c.Wait()
		floor = append(floor, time.Since(t0))

		c = startSleeper(b)
		t0 = time.Now()
		rep, err := Kill(ctx, Target{PID: c.Process.Pid}, Options{})
		t1 := time.Now()
		_ = c.Wait()
		guarded = append(guarded, time.Since(t0))
		reap = append(reap, time.Since(t1))
		if err != nil || rep.Outcome != OutcomeExited {
			b.Fatalf("Kill: %v, outcome %s", err, rep.Outcome)
		}
		inStages := time.Duration(0)
		for _, st := range rep.Stages {
			stages[st.Name] = append(stages[st.Name], st.Duration)
			inStages += st.Duration
		}
		// Kill's own bookkeeping: the bound's deadline, the spans, the
		// report, closing the pidfd and the held table.
		bookkeeping = append(bookkeeping, rep.Total-inStages)
	}
	mp, mf, mg := benchutil.Median(plain), benchutil.Median(floor), benchutil.Median(guarded)
	b.ReportMetric(float64(mp.Microseconds()), "plain-µs")
	b.ReportMetric(float64(mf.Microseconds()), "floor-µs")
	b.ReportMetric(float64(mg.Microseconds()), "fuseguard-µs")
	b.ReportMetric(benchutil.Ratio(mg, mp), "ratio")
	b.ReportMetric(benchutil.Ratio(mf, mp), "floor-ratio")
	b.ReportMetric(benchutil.Ratio(mg, mf), "fuseguard/floor")
	// The breakdown: Kill's stages (open: pidfd_open; snapshot: init's
	// mountinfo held open before the signal; signal; verify: the wait on
	// the pidfd until the exit), then the caller's wait4 of the zombie.
	for _, name := range []string{"open", "snapshot", "signal", "verify"} {
		b.ReportMetric(float64(benchutil.Median(stages[name]))/float64(time.Microsecond), name+"-µs")
	}
	b.ReportMetric(float64(benchutil.Median(reap))/float64(time.Microsecond), "reap-µs")
	b.ReportMetric(float64(benchutil.Median(bookkeeping))/float64(time.Microsecond), "bookkeeping-µs")
}

// safeFloorKill is the least a kill must do that neither hits a reused pid
// nor loses the proof of what the container owns: pidfd_open, init's
// mountinfo held open from before the signal, pidfd_send_signal, a poll
// of the pidfd until the exit. Raw syscalls, no timeouts, spans or report:
// the floor killer.Kill's own machinery is measured against.
func safeFloorKill(b *testing.B, pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	mi, err := unix.Open(fmt.Sprintf("/proc/%d/mountinfo", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(mi)
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		b.Fatal(err)
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if n, err := unix.Poll(fds, -1); n > 0 || (err != nil && err != unix.EINTR) {
			return
		}
	}
}

// BenchmarkW2Rescue measures, per wedged W2 container, how long the rescue
// takes from the abort to init's reaping, and the whole Kill against its
// verify timeout (the floor a rescue cannot beat).
func BenchmarkW2Rescue(b *testing.B) {
	var abortToReaped, total []time.Duration
	verify := time.Second
	for b.Loop() {
		b.StopTimer()
		c := fixture.W2(b, "read")
		b.StartTimer()
		begin := time.Now()
		rep, err := Kill(context.Background(), Target{PID: c.InitPID}, Options{VerifyTimeout: verify})
		if err != nil || rep.Outcome != OutcomeRecovered {
			b.Fatalf("Kill: %v, outcome %s", err, rep.Outcome)
		}
		<-c.Exited()
		reaped := time.Since(begin)
		for _, s := range rep.Stages {
			if s.Name == "abort" {
				abortToReaped = append(abortToReaped, reaped-s.Start)
				break
			}
		}
		total = append(total, rep.Total)
	}
	b.ReportMetric(float64(benchutil.Median(abortToReaped))/float64(time.Millisecond), "abort-to-reaped-ms")
	b.ReportMetric(float64(benchutil.Median(total))/float64(time.Millisecond), "kill-total-ms")
	b.ReportMetric(benchutil.Ratio(benchutil.Median(total), verify), "total/verify")
}

// BenchmarkDiagnose measures Diagnose of a namespace of 200 tasks, and its
// ratio to a namespace of one task in the same run.
func BenchmarkDiagnose(b *testing.B) {
	testenv.RequireRoot(b)
	one, many := fixture.Idle(b, 1), fixture.Idle(b, 200)
	ctx := context.Background()
	measure := func(c *fixture.Container) time.Duration {
		start := time.Now()
		d, err := Diagnose(ctx, Target{PID: c.InitPID}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Stuck) != 0 {
			b.Fatalf("idle namespace has stuck tasks: %+v", d.Stuck)
		}
		return time.Since(start)
	}
	var small, large []time.Duration
	for b.Loop() {
		small = append(small, measure(one))
		large = append(large, measure(many))
	}
	b.ReportMetric(float64(benchutil.Median(large))/float64(time.Millisecond), "ms/diagnose-200")
	b.ReportMetric(float64(benchutil.Median(small))/float64(time.Millisecond), "ms/diagnose-1")
	b.ReportMetric(benchutil.Ratio(benchutil.Median(large), benchutil.Median(small)), "ratio-200/1")
}
