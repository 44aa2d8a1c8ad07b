package executor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fuseguard/fuseguard/executor"
	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
	"github.com/fuseguard/fuseguard/test/wedgefs"
)

// TestDocker runs every scenario against one real dockerd (Debian's
// docker.io 20.10, plain runc: no fuseguard wrapper, no hook). The
// scenarios that freeze dockerd run after the others, one at a time.
func TestDocker(t *testing.T) {
	testenv.RequireLong(t)
	e := newEnv(t)
	t.Run("live", func(t *testing.T) {
		t.Run("W4Kill", func(t *testing.T) { t.Parallel(); testW4Kill(t, e) })
		t.Run("W4Stop", func(t *testing.T) { t.Parallel(); testW4Stop(t, e) })
		t.Run("W2Kill", func(t *testing.T) { t.Parallel(); testW2Kill(t, e) })
		t.Run("W2PlainKill", func(t *testing.T) { t.Parallel(); testW2PlainKill(t, e) })
		t.Run("Cancel", func(t *testing.T) { t.Parallel(); testCancel(t, e) })
		t.Run("ExampleProgram", func(t *testing.T) { t.Parallel(); testExampleProgram(t, e) })
	})
	t.Run("ReusedConnection", func(t *testing.T) { testReusedConn(t, e) })
	t.Run("W6KillThenW2", func(t *testing.T) { testW6KillThenW2(t, e) })
	t.Run("InitInExecve", func(t *testing.T) { testInitInExecve(t, e) })
	t.Run("FrozenW2Kill", func(t *testing.T) { testFrozenW2Kill(t, e) })
	t.Run("FrozenNoLeak", func(t *testing.T) { testFrozenNoLeak(t, e) })
}

// testW4Kill: a healthy container dies of the Docker SIGKILL; the
// executor's Kill takes about as long as a plain ContainerKill.
func testW4Kill(t *testing.T, e *env) {
	k, _ := e.killer(t)
	a, b := e.w4(t), e.w4(t)
	tr := dockerd.HoldTree(t, a.init)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := k.Kill(ctx, a.id[:12]) // a prefix, as operators type it
	logReport(t, rep)
	if err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if rep.Outcome != killer.OutcomeExited || !rep.DockerConfirmed || rep.ContainerID != a.id || rep.PIDFrom != "docker" || rep.Target.PID != a.init {
		t.Fatalf("Kill of a healthy container: outcome %s, confirmed %v, id %s, pid %d from %s; want exited, confirmed, %s, %d from docker",
			rep.Outcome, rep.DockerConfirmed, rep.ContainerID, rep.Target.PID, rep.PIDFrom, a.id, a.init)
	}
	if got := stageNames(rep); !slices.Equal(got, []string{executor.StageInspect, executor.StageRecord, executor.StageDockerKill, executor.StageVerify}) {
		t.Errorf("steps %v", got)
	}
	if alive := tr.Alive(); len(alive) > 0 {
		t.Errorf("processes %v of the container still alive after Kill", alive)
	}
	if st, err := e.d.Inspect(ctx, a.id); err != nil || st.Running {
		t.Errorf("Docker after Kill: %+v, %v", st, err)
	}

	begin := time.Now()
	if err := e.d.Client().ContainerKill(ctx, b.id, "KILL"); err != nil {
		t.Fatalf("plain ContainerKill: %v", err)
	}
	plain := time.Since(begin)
	t.Logf("healthy: executor Kill %v (docker_kill step %v), plain ContainerKill %v",
		rep.Total.Round(time.Microsecond), stageDuration(rep, executor.StageDockerKill).Round(time.Microsecond), plain.Round(time.Microsecond))

	// Killing what no longer runs is answered by Docker alone.
	rep, err = k.Kill(ctx, a.id)
	if err != nil || rep.Outcome != killer.OutcomeAlreadyGone || len(rep.Stages) != 1 {
		t.Errorf("second Kill: %v, outcome %s, steps %v; want already-gone after the inspect alone", err, rep.Outcome, stageNames(rep))
	}
	_, err = k.Kill(ctx, "no-such-container")
	if !errors.Is(err, executor.ErrNoContainer) {
		t.Errorf("Kill of an unknown container: %v, want ErrNoContainer", err)
	}
}

// testW4Stop: SIGTERM ends a healthy task within its grace; no SIGKILL.
func testW4Stop(t *testing.T, e *env) {
	k, _ := e.killer(t)
	c := e.w4(t)
	tr := dockerd.HoldTree(t, c.init)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const grace = 10 * time.Second
	rep, err := k.Stop(ctx, c.id, grace)
	logReport(t, rep)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if rep.Outcome != killer.OutcomeExited || !rep.DockerConfirmed {
		t.Fatalf("Stop: outcome %s, confirmed %v; want exited, confirmed", rep.Outcome, rep.DockerConfirmed)
	}
	want := []string{executor.StageInspect, executor.StageRecord, executor.StageDockerTerm, executor.StageGrace, executor.StageConfirm}
	if got := stageNames(rep); !slices.Equal(got, want) {
		t.Errorf("steps %v, want %v (SIGTERM was enough)", got, want)
	}
	if g := stageDuration(rep, executor.StageGrace); g >= grace {
		t.Errorf("grace step took %v: the exit was not seen", g)
	}
	if alive := tr.Alive(); len(alive) > 0 {
		t.Errorf("processes %v still alive after Stop", alive)
	}
	st, err := e.d.Inspect(ctx, c.id)
	if err != nil || st.Running {
		t.Errorf("Docker after Stop: %+v, %v", st, err)
	}
	t.Logf("healthy Stop took %v, exit code %d", rep.Total.Round(time.Microsecond), st.ExitCode)
}

// testW2Kill: the seed's self-deadlock under plain runc. Docker's own kill
// cannot finish; Kill rescues it by aborting the container's connection,
// with no record stored (it snapshots init before the SIGKILL).
func testW2Kill(t *testing.T, e *env) {
	k, _ := e.killer(t)
	c := e.w2(t)
	tr := dockerd.HoldTree(t, c.init)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	begin := time.Now()
	rep, err := k.Kill(ctx, c.id)
	took := time.Since(begin)
	logReport(t, rep)
	if err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if rep.Outcome != killer.OutcomeRecovered || !rep.DockerConfirmed {
		t.Fatalf("Kill of W2: outcome %s, confirmed %v; want recovered, confirmed", rep.Outcome, rep.DockerConfirmed)
	}
	if took > k.Bound() {
		t.Errorf("Kill took %v, more than its bound %v", took, k.Bound())
	}
	if s, _ := rep.Stage(executor.StageDockerKill); !strings.Contains(s.Err, executor.ErrDockerNoAnswer.Error()) {
		t.Errorf("docker_kill step %+v: want Docker's kill to outlast its deadline", s)
	}
	if !abortedConn(rep, c.conn) {
		t.Errorf("rescue aborted %+v, want connection %d", rep.Rescue.Aborted, c.conn)
	}
	if alive := tr.Alive(); len(alive) > 0 {
		t.Errorf("processes %v still alive after Kill", alive)
	}
	st, err := e.d.WaitExited(ctx, c.id)
	if err != nil || st.Status != "exited" {
		t.Errorf("Docker after Kill: %+v, %v", st, err)
	}
	t.Logf("W2 Kill: recovered in %v (bound %v); Docker says %s %d", took.Round(time.Millisecond), k.Bound(), st.Status, st.ExitCode)
}

// testW6KillThenW2: the exec-hold wedge. A task of the container sleeps
// inside execve flushing a close-on-exec file on the container's FUSE
// mount whose FLUSH is never answered, holding its exec lock: its stack
// and stat cannot be read. Kill returns within Bound, reports the task as
// unreadable, leaves no process behind, and then an unrelated wedged
// container is still rescued by the same Killer.
func testW6KillThenW2(t *testing.T, e *env) {
	k, _ := e.killer(t)
	c := e.run(t, "sh", "-c", "/fusefixture serve -mode flush -mount /mnt -hold -ready /tmp/ready & "+
		"while [ ! -s /tmp/ready ]; do sleep 0.05; done; /fusefixture exec-hold /mnt/"+wedgefs.DataFile+"; true")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	killExecHold(ctx, t, e, k, c, 0, "W6")

	next := e.w2(t)
	rep, err := k.Kill(ctx, next.id)
	logReport(t, rep)
	if err != nil || rep.Outcome != killer.OutcomeRecovered || !abortedConn(rep, next.conn) {
		t.Errorf("Kill of the next wedged container after W6: %v, outcome %s; want recovered, connection %d", err, rep.Outcome, next.conn)
	}
}

// testInitInExecve: the container's init itself sleeps inside execve
// (sh, pid 1, execs `fusefixture exec-hold`, which execs again holding a
// close-on-exec file on the container's FUSE mount whose FLUSH is never
// answered), so its stat, and the start time its record names it by,
// cannot be read; nor can runc's kill, which reads it too. The record's
// cgroup and init's PID namespace prove it instead: Kill rescues it within
// Bound, reports init unreadable and leaves no process behind.
func testInitInExecve(t *testing.T, e *env) {
	k, _ := e.killer(t)
	c := e.run(t, "sh", "-c", "/fusefixture serve -mode flush -mount /mnt -hold -ready /tmp/ready & "+
		"while [ ! -s /tmp/ready ]; do sleep 0.05; done; exec /fusefixture exec-hold -go /tmp/go /mnt/"+wedgefs.DataFile)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if logs, err := e.d.WaitLog(ctx, c.id, "fusefixture: ready role=exec-hold"); err != nil {
		t.Fatalf("exec-hold not ready: %v\n%s", err, logs)
	}
	rec := e.record(t, c)
	// Through init's root, read before the exec: once init sleeps in
	// execve the link cannot be followed.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/root/tmp/go", c.init), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rep := killExecHold(ctx, t, e, k, c, c.init, "an init inside execve")
	if rep.Target != killer.RecordTarget(rec) {
		t.Errorf("Kill's target %+v, want the record's %+v", rep.Target, killer.RecordTarget(rec))
	}
}

// killExecHold waits until c's exec-hold task sleeps in its FLUSH, Kills
// c and checks the rescue: within Bound, recovered, c's connection
// aborted, the task inside execve (tid, or any when 0) reported unreadable
// or, where the kernel answers reads of a task inside execve (6.1, 6.12;
// see fixture.InExecFlush), diagnosed from its stack, and no process left.
func killExecHold(ctx context.Context, t *testing.T, e *env, k *executor.Killer, c container, tid int, what string) executor.Report {
	t.Helper()
	if logs, err := e.d.WaitLog(ctx, c.id, "fusefixture: blocked op=FLUSH"); err != nil {
		t.Fatalf("exec-hold not armed: %v\n%s", err, logs)
	}
	tr := dockerd.HoldTree(t, c.init)
	begin := time.Now()
	rep, err := k.Kill(ctx, c.id)
	took := time.Since(begin)
	logReport(t, rep)
	if err != nil {
		t.Fatalf("Kill of %s: %v", what, err)
	}
	if took > k.Bound() {
		t.Errorf("Kill of %s took %v, more than its bound %v", what, took, k.Bound())
	}
	if rep.Outcome != killer.OutcomeRecovered || !abortedConn(rep, c.conn) {
		t.Fatalf("Kill of %s: outcome %s, aborted %+v; want recovered, connection %d", what, rep.Outcome, rep.Rescue, c.conn)
	}
	if rep.Rescue == nil || rep.Rescue.Diagnosis == nil || !slices.ContainsFunc(rep.Rescue.Diagnosis.Stuck, func(task killer.Task) bool {
		return (tid == 0 || task.TID == tid) && (strings.Contains(task.Unreadable, proc.ErrReadTimeout.Error()) ||
			task.Unreadable == "" && fixture.InExecFlush(task.Stack))
	}) {
		t.Errorf("%s: the task inside execve is neither reported unreadable nor inside execve: %+v", what, rep.Rescue)
	}
	if alive := tr.Alive(); len(alive) > 0 {
		t.Errorf("processes %v still alive after Kill", alive)
	}
	t.Logf("Kill of %s: recovered in %v (bound %v)", what, took.Round(time.Millisecond), k.Bound())
	return rep
}

// testW2PlainKill: the same container with a plain ContainerKill and no
// deadline of ours: Docker gives up after its own wait and the container
// keeps running. Aborting its connection is the only way out.
func testW2PlainKill(t *testing.T, e *env) {
	c := e.w2(t)
	// A safety net far beyond Docker's own 12 s, not a deadline of the kill.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	begin := time.Now()
	err := e.d.Client().ContainerKill(ctx, c.id, "KILL")
	took := time.Since(begin)
	t.Logf("plain ContainerKill of W2 returned after %v: %v", took.Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("plain ContainerKill of W2 succeeded; the baseline no longer shows the bug")
	}
	if !strings.Contains(err.Error(), "did not receive an exit event") && !strings.Contains(err.Error(), "is zombie and can not be killed") {
		t.Errorf("plain ContainerKill failed with %v, want Docker 20.10's give-up", err)
	}
	// Docker waits 10 s for the exit, then 2 s more after a direct kill
	// (a zombie init is refused right after the first 10 s).
	if took < 9*time.Second {
		t.Errorf("plain ContainerKill gave up after %v, want Docker's own 10-12 s wait", took)
	}
	st, err := e.d.Inspect(ctx, c.id)
	if err != nil || !st.Running {
		t.Fatalf("after the failed plain kill: %+v, %v; want still running", st, err)
	}
	e.abort(t, c.conn)
	if st, err := e.d.WaitExited(ctx, c.id); err != nil || st.Status != "exited" {
		t.Fatalf("after aborting connection %d: %+v, %v", c.conn, st, err)
	}
}

// testCancel: cancelling the context stops Kill promptly, in whichever
// step it is, with the context's error.
func testCancel(t *testing.T, e *env) {
	for _, tc := range []struct {
		name          string
		dockerTimeout time.Duration
		cancelAfter   time.Duration
		inStage       string
	}{
		// Docker's kill of W2 blocks for 12 s; ours would give up after 10.
		{"in docker_kill", 10 * time.Second, 500 * time.Millisecond, executor.StageDockerKill},
		// Docker's kill given up after 200 ms; the verify waits 2 s.
		{"in pidfd_kill", 200 * time.Millisecond, time.Second, executor.StagePidfdKill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, _ := e.killer(t)
			k.DockerTimeout = tc.dockerTimeout
			c := e.w2(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cancelledAt := make(chan time.Time, 1)
			timer := time.AfterFunc(tc.cancelAfter, func() { cancelledAt <- time.Now(); cancel() })
			defer timer.Stop()
			rep, err := k.Kill(ctx, c.id)
			returned := time.Now()
			logReport(t, rep)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Kill: %v, want context.Canceled", err)
			}
			var cancelled time.Time
			select {
			case cancelled = <-cancelledAt:
			default:
				t.Fatal("Kill returned before the cancel")
			}
			lag := returned.Sub(cancelled)
			t.Logf("returned %v after the cancel", lag.Round(time.Microsecond))
			if lag > 500*time.Millisecond {
				t.Errorf("Kill returned %v after the cancel", lag)
			}
			last := rep.Stages[len(rep.Stages)-1]
			if last.Name != tc.inStage || !strings.Contains(last.Err, context.Canceled.Error()) {
				t.Errorf("last step %+v, want %s ended by the cancel", last, tc.inStage)
			}
			if rep.Outcome != executor.OutcomeUnknown {
				t.Errorf("outcome %s after a cancel mid-kill, want %s", rep.Outcome, executor.OutcomeUnknown)
			}
		})
	}
}

// testFrozenW2Kill: dockerd stopped with SIGSTOP while a W2 container is
// killed. Kill finds init in the record, kills through a pidfd, rescues,
// and says that Docker did not answer; thawed, Docker agrees.
func testFrozenW2Kill(t *testing.T, e *env) {
	k, _ := e.killer(t)
	c := e.w2(t)
	rec := e.record(t, c)
	tr := dockerd.HoldTree(t, c.init)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	thaw := freeze(t, e.d)
	begin := time.Now()
	rep, err := k.Kill(ctx, c.id[:16])
	took := time.Since(begin)
	alive := tr.Alive()
	thaw()
	logReport(t, rep)
	if !errors.Is(err, executor.ErrDockerNoAnswer) || !strings.Contains(err.Error(), "docker did not answer") {
		t.Fatalf("Kill with dockerd frozen: %v, want ErrDockerNoAnswer", err)
	}
	if took > k.Bound() {
		t.Errorf("Kill took %v, more than its bound %v", took, k.Bound())
	}
	if rep.Outcome != killer.OutcomeRecovered || rep.DockerConfirmed || rep.PIDFrom != "record" || rep.Target != killer.RecordTarget(rec) {
		t.Errorf("report: outcome %s, confirmed %v, target %+v from %s; want recovered, unconfirmed, %d from record",
			rep.Outcome, rep.DockerConfirmed, rep.Target, rep.PIDFrom, rec.InitPID)
	}
	if got := stageNames(rep); !slices.Equal(got, []string{executor.StageInspect, executor.StageRecord, executor.StagePidfdKill}) {
		t.Errorf("steps %v: want no Docker call after the inspect found it frozen", got)
	}
	if !abortedConn(rep, c.conn) {
		t.Errorf("rescue aborted %+v, want connection %d", rep.Rescue, c.conn)
	}
	if len(alive) > 0 {
		t.Errorf("processes %v alive when Kill returned", alive)
	}
	st, err := e.d.WaitExited(ctx, c.id)
	if err != nil || st.Status != "exited" {
		t.Errorf("thawed Docker: %+v, %v; want exited", st, err)
	}
	t.Logf("frozen dockerd: Kill returned %s in %v (bound %v); thawed Docker says %s %d", rep.Outcome, took.Round(time.Millisecond), k.Bound(), st.Status, st.ExitCode)
}

// testFrozenNoLeak: calls blocked on a frozen dockerd leave no goroutine
// behind once they return (checked while dockerd is still frozen, so a
// request still in flight would show). Kill and Stop of healthy
// containers, both through the record.
func testFrozenNoLeak(t *testing.T, e *env) {
	a, b := e.w4(t), e.w4(t)
	e.record(t, a)
	e.record(t, b)
	trA, trB := dockerd.HoldTree(t, a.init), dockerd.HoldTree(t, b.init)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ignore := goleak.IgnoreCurrent()
	k, closeCli := e.killer(t)
	k.DockerTimeout = time.Second
	thaw := freeze(t, e.d)

	const grace = 5 * time.Second
	begin := time.Now()
	repA, errA := k.Kill(ctx, a.id)
	tookA := time.Since(begin)
	begin = time.Now()
	repB, errB := k.Stop(ctx, b.id, grace)
	tookB := time.Since(begin)
	closeCli()
	leakErr := goleak.Find(ignore)
	thaw()
	logReport(t, repA)
	logReport(t, repB)
	if leakErr != nil {
		t.Errorf("goroutines left after calls blocked on a frozen dockerd:\n%v", leakErr)
	}
	// The documented bounds, which Kill and Stop enforce as deadlines.
	if tookA > k.Bound() {
		t.Errorf("Kill took %v, more than its bound %v", tookA, k.Bound())
	}
	if tookB > k.StopBound(grace) {
		t.Errorf("Stop took %v, more than its bound %v", tookB, k.StopBound(grace))
	}
	for _, r := range []struct {
		name string
		rep  executor.Report
		err  error
		tr   *dockerd.Tree
	}{{"Kill", repA, errA, trA}, {"Stop", repB, errB, trB}} {
		if !errors.Is(r.err, executor.ErrDockerNoAnswer) || r.rep.Outcome != killer.OutcomeExited {
			t.Errorf("%s with dockerd frozen: %s, %v; want exited and ErrDockerNoAnswer", r.name, r.rep.Outcome, r.err)
		}
		if alive := r.tr.Alive(); len(alive) > 0 {
			t.Errorf("%s: processes %v alive", r.name, alive)
		}
	}
	if _, ok := repB.Stage(executor.StagePidfdTerm); !ok {
		t.Errorf("Stop steps %v: want SIGTERM through the pidfd", stageNames(repB))
	}
	for _, id := range []string{a.id, b.id} {
		if st, err := e.d.WaitExited(ctx, id); err != nil || st.Status != "exited" {
			t.Errorf("thawed Docker on %.12s: %+v, %v", id, st, err)
		}
	}
}

func logReport(t *testing.T, rep executor.Report) {
	t.Helper()
	var b strings.Builder
	rep.Timeline(&b)
	t.Logf("report:\n%s", b.String())
}

func stageNames(rep executor.Report) []string {
	var out []string
	for _, s := range rep.Stages {
		out = append(out, s.Name)
	}
	return out
}

func stageDuration(rep executor.Report, name string) time.Duration {
	s, _ := rep.Stage(name)
	return s.Duration
}

func abortedConn(rep executor.Report, conn uint32) bool {
	if rep.Rescue == nil {
		return false
	}
	return slices.ContainsFunc(rep.Rescue.Aborted, func(a killer.Abort) bool {
		return a.Conn == fuseconn.ConnID(conn) && a.Done
	})
}
