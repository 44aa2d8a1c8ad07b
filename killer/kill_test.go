package killer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
)

// Bounds of the scenario tests: short enough to keep the suite fast, long
// enough for a loaded two-core machine to reap a healthy namespace.
const (
	testVerify  = 1 * time.Second
	testRecover = 2 * time.Second
)

func testOptions() Options {
	return Options{VerifyTimeout: testVerify, RecoverTimeout: testRecover}
}

// killAndCheck kills c's init and checks the outcome, the aborted
// connections (exactly want) and that the whole call returned within its
// documented bound, Options.Bound.
func killAndCheck(t *testing.T, c *fixture.Container, opts Options, wantOutcome Outcome, want ...fuseconn.ConnID) Report {
	t.Helper()
	return killTargetAndCheck(t, c, Target{PID: c.InitPID}, opts, wantOutcome, want...)
}

// killTargetAndCheck is killAndCheck of c's init named by target.
func killTargetAndCheck(t *testing.T, c *fixture.Container, target Target, opts Options, wantOutcome Outcome, want ...fuseconn.ConnID) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	rep, err := Kill(ctx, target, opts)
	took := time.Since(start)
	t.Logf("%s: outcome %s in %v, stages %+v, aborted %+v, refused %+v", c.Scenario, rep.Outcome, rep.Total, rep.Stages, rep.Aborted, rep.Refused)
	if rep.Outcome != wantOutcome {
		t.Fatalf("outcome = %s (err %v), want %s", rep.Outcome, err, wantOutcome)
	}
	switch wantOutcome {
	case OutcomeStillStuck:
		if !errors.Is(err, ErrStillStuck) {
			t.Fatalf("err = %v, want ErrStillStuck", err)
		}
	default:
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
	}
	var got []fuseconn.ConnID
	for _, a := range rep.Aborted {
		if a.Done {
			got = append(got, a.Conn)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("aborted %v, want exactly %v", got, want)
	}
	if bound := opts.Bound(); took > bound {
		t.Errorf("Kill returned after %v, bound %v", took, bound)
	}
	return rep
}

// reaped waits until the fixture reaped init.
func reaped(t *testing.T, c *fixture.Container) {
	t.Helper()
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: init %d not reaped 5 s after Kill returned", c.Scenario, c.InitPID)
	}
}

func TestKillW1Private(t *testing.T) {
	t.Parallel()
	c := fixture.W1(t, false)
	rep := killAndCheck(t, c, testOptions(), OutcomeRecovered, c.Conn)
	if d := rep.Diagnosis; d == nil || !d.InitInZap {
		t.Errorf("diagnosis does not see init in zap_pid_ns_processes: %+v", d)
	}
	reaped(t, c)
}

func TestKillW1SharedRefusedThenAllowed(t *testing.T) {
	t.Parallel()
	c := fixture.W1(t, true)
	refusedThenAllowed(t, c, func(a Abort) bool { return !a.Owned })
}

// refusedThenAllowed kills c, whose only connection the default policy
// must refuse (and accept), then allows that fs type as the operator
// would: a verify-only pass must rescue it.
func refusedThenAllowed(t *testing.T, c *fixture.Container, accept func(Abort) bool) {
	t.Helper()
	rep := killAndCheck(t, c, testOptions(), OutcomeStillStuck)
	// Host mounts of tests running at the same time are in the container's
	// table too (refused as well): find this scenario's.
	i := slices.IndexFunc(rep.Refused, func(a Abort) bool { return a.Conn == c.Conn })
	if i < 0 || !accept(rep.Refused[i]) {
		t.Fatalf("refused = %+v, want the shared connection %d", rep.Refused, c.Conn)
	}
	opts := testOptions()
	opts.VerifyOnly = true
	opts.Policy.AllowSharedFSTypes = []string{rep.Refused[i].FSType}
	killAndCheck(t, c, opts, OutcomeRecovered, c.Conn)
	reaped(t, c)
}

func TestKillW2(t *testing.T) {
	for _, variant := range []string{"read", "lookup"} {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			c := fixture.W2(t, variant)
			rep := killAndCheck(t, c, testOptions(), OutcomeRecovered, c.Conn)
			d := rep.Diagnosis
			if d == nil || !d.InitInZap || len(d.Stuck) == 0 {
				t.Fatalf("diagnosis = %+v, want init in zap and a stuck task", d)
			}
			var found bool
			for _, task := range d.Stuck {
				if task.Blocker == BlockerFUSERequest {
					found = true
					if variant == "read" && (!task.HasConn || task.Conn != c.Conn) {
						t.Errorf("stuck reader %d: conn %d (known %v), want %d via its fd", task.TID, task.Conn, task.HasConn, c.Conn)
					}
					if !slices.Contains(slices.Concat(task.SigPnd, task.ShdPnd), "SIGKILL") {
						t.Errorf("stuck task %d has no pending SIGKILL: %v %v", task.TID, task.SigPnd, task.ShdPnd)
					}
				}
			}
			if !found {
				t.Errorf("no stuck task classified %s: %+v", BlockerFUSERequest, d.Stuck)
			}
			reaped(t, c)
		})
	}
}

func TestKillW3(t *testing.T) {
	t.Run("daemon-inside", func(t *testing.T) {
		t.Parallel()
		c := fixture.W3(t, true)
		rep := killAndCheck(t, c, testOptions(), OutcomeRecovered, c.Conn)
		var flush bool
		for _, task := range rep.Diagnosis.Stuck {
			flush = flush || task.Blocker == BlockerFUSEFlush
		}
		if !flush {
			t.Errorf("no task classified %s: %+v", BlockerFUSEFlush, rep.Diagnosis.Stuck)
		}
		reaped(t, c)
	})
	t.Run("daemon-outside", func(t *testing.T) {
		t.Parallel()
		c := fixture.W3(t, false)
		refusedThenAllowed(t, c, func(Abort) bool { return true })
	})
}

func TestKillW4Healthy(t *testing.T) {
	t.Parallel()
	c := fixture.W4(t)
	rep := killAndCheck(t, c, testOptions(), OutcomeExited)
	if rep.Diagnosis != nil {
		t.Errorf("a healthy kill was diagnosed: %+v", rep.Diagnosis)
	}
	reaped(t, c)
}

func TestKillW5SharedUntouched(t *testing.T) {
	t.Parallel()
	c := fixture.W5(t)
	killAndCheck(t, c, testOptions(), OutcomeRecovered, c.Conn)
	reaped(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SharedAnswers(ctx); err != nil {
		t.Fatalf("shared connection %d no longer answers: %v", c.Shared, err)
	}
}

func TestKillDryRunAbortsNothing(t *testing.T) {
	t.Parallel()
	c := fixture.W2(t, "read")
	opts := testOptions()
	opts.Policy.DryRun = true
	rep := killAndCheck(t, c, opts, OutcomeStillStuck)
	if len(rep.Aborted) != 1 || rep.Aborted[0].Conn != c.Conn || rep.Aborted[0].Done {
		t.Fatalf("dry run reported %+v, want connection %d planned, not done", rep.Aborted, c.Conn)
	}
	ctl := fuseconn.NewControl("")
	if w, err := ctl.Waiting(c.Conn); err != nil || w == 0 {
		t.Fatalf("connection %d after a dry run: waiting %d, err %v; want still waiting", c.Conn, w, err)
	}
}

func TestKillStaleTargetRefused(t *testing.T) {
	t.Parallel()
	c := fixture.W4(t)
	st, err := proc.NewFS("").Stat(context.Background(), c.InitPID)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Kill(context.Background(), Target{PID: c.InitPID, StartTime: st.StartTime + 1}, testOptions())
	if !errors.Is(err, ErrStaleTarget) {
		t.Fatalf("Kill of a stale target: err %v, outcome %s; want ErrStaleTarget", err, rep.Outcome)
	}
	select {
	case <-c.Exited():
		t.Fatal("a stale target was killed")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestKillAlreadyGone(t *testing.T) {
	t.Parallel()
	c := fixture.W4(t)
	pid := c.InitPID
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	reaped(t, c)
	rep, err := Kill(context.Background(), Target{PID: pid}, testOptions())
	if err != nil || rep.Outcome != OutcomeAlreadyGone {
		t.Fatalf("Kill of a reaped pid: outcome %s, err %v; want already-gone", rep.Outcome, err)
	}
}

func TestKillHonoursContext(t *testing.T) {
	t.Parallel()
	c := fixture.W2(t, "read")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := Kill(ctx, Target{PID: c.InitPID}, Options{VerifyTimeout: 10 * time.Second, RecoverTimeout: 10 * time.Second})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v (outcome %s), want context.DeadlineExceeded", err, rep.Outcome)
	}
	if took > 2*time.Second {
		t.Fatalf("Kill returned %v after its context ended", took-300*time.Millisecond)
	}
}

func TestDiagnoseAfterKill(t *testing.T) {
	t.Parallel()
	c := fixture.W2(t, "read")
	rec, err := record.NewRecord(proc.NewFS(""), "w2", c.InitPID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Lookup(c.Conn); !ok {
		t.Fatalf("record of a running W2 lacks connection %d: %+v", c.Conn, rec.Connections)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.Record = rec
	var d *Diagnosis
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err = Diagnose(context.Background(), Target{PID: c.InitPID, StartTime: rec.InitStartTime}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if d.InitInZap && len(d.Stuck) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !d.InitInZap || len(d.Plan) != 1 || d.Plan[0].Conn != c.Conn || !d.Plan[0].Owned {
		t.Fatalf("diagnosis: inZap %v, plan %+v; want connection %d planned", d.InitInZap, d.Plan, c.Conn)
	}
	// Diagnose changes nothing: the connection still waits.
	if w, err := fuseconn.NewControl("").Waiting(c.Conn); err != nil || w == 0 {
		t.Fatalf("after Diagnose: waiting %d, err %v", w, err)
	}
}

// TestKillReusedConnectionIsNotAborted is the id-reuse break: the record
// names id N as the container's, but N has since been handed to a host
// mount with a reader waiting. Kill must rescue the container's wedge and
// leave the host's N serving, its reader still waiting. Not parallel: a
// FUSE mount of a parallel test could take the freed id first.
func TestKillReusedConnectionIsNotAborted(t *testing.T) {
	var rec *record.Record
	c, reused := fixture.Reuse(t, func(c *fixture.Container) {
		var err error
		if rec, err = record.NewRecord(proc.NewFS(""), "reuse", c.InitPID, time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	rc, ok := rec.Lookup(reused.Conn)
	if !ok || !rc.Owned || rc.Gen != reused.OwnGen {
		t.Fatalf("record lacks the container's own connection %d (generation %d): %+v", reused.Conn, reused.OwnGen, rec.Connections)
	}
	opts := testOptions()
	opts.Record = rec
	rep := killAndCheck(t, c, opts, OutcomeRecovered, c.Conn)
	i := slices.IndexFunc(rep.Refused, func(a Abort) bool { return a.Conn == reused.Conn })
	if i < 0 || !strings.Contains(rep.Refused[i].Reason, "replaced since it was recorded") {
		t.Errorf("refused = %+v, want connection %d refused as replaced", rep.Refused, reused.Conn)
	}
	reaped(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reused.Intact(ctx); err != nil {
		t.Fatalf("the host's connection %d after the kill: %v", reused.Conn, err)
	}
}

// TestKillW6ExecFlushThenW2: the exec-hold wedge. The stuck task's stack
// cannot be read (it holds its exec lock, asleep in fuse_flush inside
// execve; where the kernel answers such reads, see fixture.InExecFlush, it
// is diagnosed from its stack): Kill returns within its bound, reports the
// task as unreadable,
// and still aborts the container's own connection, which has a request
// waiting. Then an unrelated W2 is rescued by a second Kill in the same
// process: the reads abandoned meanwhile must not break it.
func TestKillW6ExecFlushThenW2(t *testing.T) {
	c := fixture.W6(t, 1)
	rep := killAndCheck(t, c, testOptions(), OutcomeRecovered, c.Conn)
	d := rep.Diagnosis
	i := slices.IndexFunc(d.Stuck, func(task Task) bool { return task.TID == c.ExecPID })
	if i < 0 {
		t.Fatalf("task %d in execve not among the stuck: %+v", c.ExecPID, d.Stuck)
	}
	if task := d.Stuck[i]; task.Unreadable == "" {
		// This kernel answers reads of a task inside execve (6.1, 6.12; see
		// fixture.InExecFlush): the task is diagnosed from its stack.
		if !fixture.InExecFlush(task.Stack) || task.Blocker != BlockerFUSERequest || task.HasConn {
			t.Errorf("readable task in execve: stack %s, blocker %s, has conn %v; want a FUSE flush inside execve, %s, no conn", task.Stack, task.Blocker, task.HasConn, BlockerFUSERequest)
		}
		t.Logf("this kernel answers reads of a task inside execve: %s", task.Stack)
		if u := d.UnreadableTasks(); len(u) > 0 {
			t.Errorf("unreadable tasks %q, but every stuck task's stack was read", u)
		}
	} else {
		want := fmt.Sprintf("task %d (", c.ExecPID)
		if u := d.UnreadableTasks(); !slices.ContainsFunc(u, func(l string) bool {
			return strings.HasPrefix(l, want) && strings.Contains(l, proc.ErrReadTimeout.Error())
		}) {
			t.Errorf("unreadable tasks %q do not name task %d with its read timeout", u, c.ExecPID)
		}
		if task.Blocker != BlockerUnknown || !strings.Contains(task.Unreadable, proc.ErrReadTimeout.Error()) || task.HasConn {
			t.Errorf("task in execve: blocker %s, unreadable %q, has conn %v; want %s, a read timeout, no conn", task.Blocker, task.Unreadable, task.HasConn, BlockerUnknown)
		}
		if !slices.ContainsFunc(d.Notes, func(n string) bool { return strings.Contains(n, fmt.Sprintf("task %d ", c.ExecPID)) }) {
			t.Errorf("no note on the unreadable task %d: %q", c.ExecPID, d.Notes)
		}
		var text strings.Builder
		d.Explain(&text)
		if !strings.Contains(text.String(), "kernel stack unreadable") {
			t.Errorf("explanation does not report the unreadable task:\n%s", text.String())
		}
		js, err := json.Marshal(d)
		if err != nil || !strings.Contains(string(js), `"unreadable":`) || !strings.Contains(string(js), `"blocker":"unknown"`) {
			t.Errorf("JSON does not report the unreadable task (err %v): %s", err, js)
		}
	}
	reaped(t, c)
	if left := c.Tasks(); len(left) > 0 {
		t.Errorf("tasks left behind: %v", left)
	}

	c2 := fixture.W2(t, "read")
	rep2 := killAndCheck(t, c2, testOptions(), OutcomeRecovered, c2.Conn)
	if !slices.ContainsFunc(rep2.Diagnosis.Stuck, func(task Task) bool { return task.HasConn && task.Conn == c2.Conn }) {
		t.Errorf("W2 after W6: no stuck task found waiting on %d via its fd: %+v", c2.Conn, rep2.Diagnosis.Stuck)
	}
	reaped(t, c2)
}

// TestKillManyExecHoldsKeepTheBudget: more tasks asleep inside execve than
// the diagnosis budget has task reads for. Each costs one read deadline,
// the diagnosis is cut short at its budget and says so, and Kill still
// aborts the container's connection (requests waiting) within its bound.
func TestKillManyExecHoldsKeepTheBudget(t *testing.T) {
	opts := testOptions()
	opts.DiagnoseTimeout = 800 * time.Millisecond
	tasks := 2 * taskReadShare // twice the reads the budget holds
	c := fixture.W6(t, tasks)
	rep := killAndCheck(t, c, opts, OutcomeRecovered, c.Conn)
	d := rep.Diagnosis
	unreadable, readable := 0, 0
	for _, task := range d.Stuck {
		switch {
		case task.Blocker == BlockerUnknown:
			unreadable++
		case fixture.InExecFlush(task.Stack):
			readable++
		}
	}
	if unreadable == 0 && readable == tasks {
		// This kernel answers reads of a task inside execve (6.1, 6.12;
		// see fixture.InExecFlush): no read costs a deadline, and the
		// budget only has to hold.
		t.Logf("this kernel answers reads of the %d tasks inside execve: the budget is not spent", tasks)
	} else {
		if unreadable == 0 || unreadable >= tasks {
			t.Errorf("%d of %d tasks in execve reported unreadable (%d readable); want some, not all, within the budget", unreadable, tasks, readable)
		}
		if !slices.ContainsFunc(d.Notes, func(n string) bool { return strings.Contains(n, "cut short") }) {
			t.Errorf("no note that the diagnosis was cut short: %q", d.Notes)
		}
	}
	for _, s := range rep.Stages {
		if s.Name == "diagnose" && s.Duration > opts.DiagnoseTimeout+BoundSlack {
			t.Errorf("diagnose took %v, budget %v", s.Duration, opts.DiagnoseTimeout)
		}
	}
	reaped(t, c)
}
