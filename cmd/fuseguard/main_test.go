package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// fg runs the fuseguard binary with a deadline and returns stdout, stderr
// and the exit code.
func fg(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return fgcmd.Run(t, fgcmd.Binary(t), []string{"FUSEGUARD_STATE_DIR=" + testenv.StateDir(t)}, args...)
}

// killJSON runs `fuseguard kill --json` with args, requires it to exit 0,
// and returns its report and the connections it reports aborted.
func killJSON(t *testing.T, args ...string) (killer.Report, []fuseconn.ConnID) {
	t.Helper()
	stdout, stderr, code := fg(t, append([]string{"kill", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("kill %v: exit %d\n%s\n%s", args, code, stdout, stderr)
	}
	var rep killer.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	var aborted []fuseconn.ConnID
	for _, a := range rep.Aborted {
		aborted = append(aborted, a.Conn)
	}
	return rep, aborted
}

func TestBadInput(t *testing.T) {
	self := fmt.Sprint(os.Getpid())
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no command", nil, exitUsage},
		{"unknown command", []string{"frobnicate"}, exitUsage},
		{"kill without pid", []string{"kill"}, exitUsage},
		{"kill garbage pid", []string{"kill", "12abc"}, exitUsage},
		{"kill negative pid", []string{"kill", "--", "-5"}, exitUsage},
		{"kill two pids", []string{"kill", "1", "2"}, exitUsage},
		{"kill bad flag", []string{"kill", "--no-such-flag", "1"}, exitUsage},
		{"kill bad duration", []string{"kill", "--verify-timeout", "soon", "1"}, exitUsage},
		{"kill no such pid", []string{"kill", "2147483646"}, exitNoTarget},
		{"diagnose no such pid", []string{"diagnose", "2147483646"}, exitNoTarget},
		{"kill a pid without a namespace", []string{"kill", self}, exitFailure},
		{"diagnose a pid without a namespace", []string{"diagnose", self}, exitFailure},
		{"diagnose bad log format", []string{"diagnose", "--log-format", "xml", self}, exitUsage},
		{"version with arguments", []string{"version", "x"}, exitUsage},
		{"kill missing record", []string{"kill", "--id", "nope", self}, exitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := fg(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Fatalf("panicked: %s", stderr)
			}
			if tt.code != exitUsage && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("error is not one line: %q", stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := fg(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "fuseguard ") {
		t.Fatalf("version: exit %d, %q", code, stdout)
	}
}

func TestKillRescuesW2(t *testing.T) {
	t.Parallel()
	c := fixture.W2(t, "lookup")
	stdout, stderr, code := fg(t, "kill", "--verify-timeout", "1s", fmt.Sprint(c.InitPID))
	if code != exitOK {
		t.Fatalf("kill: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"zap_pid_ns_processes", "request_wait_answer", fmt.Sprintf("connection %d", c.Conn), "outcome recovered"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("kill output lacks %q:\n%s", want, stdout)
		}
	}
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("init not reaped after fuseguard kill")
	}
}

func TestKillJSONStillStuckExitsNonZero(t *testing.T) {
	t.Parallel()
	c := fixture.W3(t, false) // a host mount: refused by default
	stdout, stderr, code := fg(t, "kill", "--json", "--verify-timeout", "500ms", "--recover-timeout", "500ms", fmt.Sprint(c.InitPID))
	if code != exitFailure {
		t.Fatalf("kill of a refused W3: exit %d, want %d\n%s\n%s", code, exitFailure, stdout, stderr)
	}
	var rep killer.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if rep.Outcome != killer.OutcomeStillStuck || !slices.ContainsFunc(rep.Refused, func(a killer.Abort) bool { return a.Conn == c.Conn }) {
		t.Fatalf("report: outcome %s refused %+v; want still-stuck refusing %d", rep.Outcome, rep.Refused, c.Conn)
	}
	if !strings.Contains(stderr, "still stuck") {
		t.Errorf("stderr does not say it is still stuck: %q", stderr)
	}
}

// diagnoseKilled runs `fuseguard diagnose --json` on a killed init until
// it waits in zap_pid_ns_processes with a plan, or 5 s have passed.
func diagnoseKilled(t *testing.T, pid int) killer.Diagnosis {
	t.Helper()
	var d killer.Diagnosis
	deadline := time.Now().Add(5 * time.Second)
	for {
		stdout, stderr, code := fg(t, "diagnose", "--json", fmt.Sprint(pid))
		if code != exitOK {
			t.Fatalf("diagnose: exit %d\n%s", code, stderr)
		}
		if err := json.Unmarshal([]byte(stdout), &d); err != nil {
			t.Fatal(err)
		}
		if d.InitInZap && len(d.Plan) > 0 || time.Now().After(deadline) {
			return d
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDiagnoseExplainsTheChain(t *testing.T) {
	t.Parallel()
	c := fixture.W2(t, "read")
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	d := diagnoseKilled(t, c.InitPID)
	if !d.InitInZap || len(d.Plan) != 1 || d.Plan[0].Conn != c.Conn {
		t.Fatalf("diagnosis: inZap %v plan %+v; want connection %d", d.InitInZap, d.Plan, c.Conn)
	}
	stdout, _, code := fg(t, "diagnose", fmt.Sprint(c.InitPID))
	for _, want := range []string{"zap_pid_ns_processes", "request_wait_answer", fmt.Sprintf("kill would abort connection %d", c.Conn)} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("diagnose output lacks %q (exit %d):\n%s", want, code, stdout)
		}
	}
}

// TestKillExecHoldWithinBound: `fuseguard kill` of the exec-hold wedge (a
// task asleep in a FUSE flush inside execve, whose stack cannot be read
// where the kernel blocks such reads) returns within the documented bound,
// reports the task as unreadable (or inside execve) in its JSON, and
// rescues the container; then an unrelated W2 is rescued.
func TestKillExecHoldWithinBound(t *testing.T) {
	t.Parallel()
	c := fixture.W6(t, 1)
	opts := killer.Options{VerifyTimeout: time.Second, DiagnoseTimeout: time.Second, RecoverTimeout: 2 * time.Second}
	// Built (once per test process) before the clock starts: run alone,
	// this test would otherwise time the build too.
	fgcmd.Binary(t)
	start := time.Now()
	stdout, stderr, code := fg(t, "kill", "--json", "--verify-timeout", "1s", "--diagnose-timeout", "1s", "--recover-timeout", "2s", fmt.Sprint(c.InitPID))
	took := time.Since(start)
	if code != exitOK {
		t.Fatalf("kill of W6: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// The process's own start (a Go binary) is outside Kill; it is small
	// beside BoundSlack but is measured here too.
	if bound := opts.Bound(); took > bound {
		t.Errorf("fuseguard kill returned after %v, bound %v", took, bound)
	}
	var rep killer.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if rep.Outcome != killer.OutcomeRecovered || rep.Diagnosis == nil {
		t.Fatalf("report: outcome %s, diagnosis %v; want recovered", rep.Outcome, rep.Diagnosis)
	}
	// Unreadable, or, where the kernel answers reads of a task inside
	// execve (6.1, 6.12; see fixture.InExecFlush), diagnosed from its stack.
	if !slices.ContainsFunc(rep.Diagnosis.Stuck, func(task killer.Task) bool {
		return task.TID == c.ExecPID && (task.Blocker == killer.BlockerUnknown && task.Unreadable != "" ||
			task.Blocker == killer.BlockerFUSERequest && task.Unreadable == "" && fixture.InExecFlush(task.Stack))
	}) {
		t.Errorf("task %d in execve neither reported unreadable nor inside execve: %+v", c.ExecPID, rep.Diagnosis.Stuck)
	}
	if !slices.ContainsFunc(rep.Aborted, func(a killer.Abort) bool { return a.Conn == c.Conn && a.Done }) {
		t.Errorf("connection %d not aborted: %+v", c.Conn, rep.Aborted)
	}
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("init not reaped after fuseguard kill")
	}
	if left := c.Tasks(); len(left) > 0 {
		t.Errorf("tasks left behind: %v", left)
	}

	c2 := fixture.W2(t, "read")
	stdout, stderr, code = fg(t, "kill", "--verify-timeout", "1s", fmt.Sprint(c2.InitPID))
	if code != exitOK || !strings.Contains(stdout, "outcome recovered") {
		t.Fatalf("kill of W2 after W6: exit %d\n%s\n%s", code, stdout, stderr)
	}
	select {
	case <-c2.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("W2 init not reaped after fuseguard kill")
	}
}

// TestKillInitInExecveByRecord: `fuseguard kill PID` of a container whose
// init itself sleeps inside execve (fixture.W6Init), with the record the
// hook wrote: init's stat, and so the start time the record names it by,
// cannot be read; its PID namespace and the record's cgroup prove it, and
// it is rescued within the bound (and diagnosed before). The same start
// time given with no record (no cgroup to prove it by) is refused, nothing
// signalled.
func TestKillInitInExecveByRecord(t *testing.T) {
	t.Parallel()
	stateDir := testenv.StateDir(t)
	var rec *record.Record
	c := fixture.W6Init(t, func(c *fixture.Container) {
		var err error
		if rec, err = record.NewRecord(proc.NewFS(""), "init-exec", c.InitPID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := record.NewStore(stateDir).Save(rec); err != nil {
			t.Fatal(err)
		}
	})
	timeouts := []string{"--verify-timeout", "1s", "--diagnose-timeout", "1s", "--recover-timeout", "2s"}
	opts := killer.Options{VerifyTimeout: time.Second, DiagnoseTimeout: time.Second, RecoverTimeout: 2 * time.Second}

	if statBlocks, err := fixture.StatSleeps(c.InitPID); statBlocks {
		args := append([]string{"kill", "--state-dir", testenv.StateDir(t), "--start-time", fmt.Sprint(rec.InitStartTime)}, timeouts...)
		stdout, stderr, code := fg(t, append(args, fmt.Sprint(c.InitPID))...)
		if code != exitFailure || !strings.Contains(stderr, "did not return in time") {
			t.Errorf("kill --start-time of init in execve, no record: exit %d, want %d and the unreadable stat\n%s\n%s", code, exitFailure, stdout, stderr)
		}
		if st, err := proc.NewFS("").Status(c.InitPID); err != nil || (st.SigPnd|st.ShdPnd)&(1<<(unix.SIGKILL-1)) != 0 {
			t.Fatalf("init after the refused kill: status %+v, %v; want no SIGKILL pending", st, err)
		}
	} else {
		t.Logf("this kernel answers the stat of a task inside execve (err %v): the refusal is not tested", err)
	}

	// diagnose proves init the same way, and signals nothing.
	stdout, stderr, code := fg(t, "diagnose", "--state-dir", stateDir, fmt.Sprint(c.InitPID))
	if want := fmt.Sprintf("kill would abort connection %d", c.Conn); code != exitOK || !strings.Contains(stdout, want) {
		t.Errorf("diagnose of init in execve: exit %d, want %d and %q\n%s\n%s", code, exitOK, want, stdout, stderr)
	}

	start := time.Now()
	rep, aborted := killJSON(t, append(append([]string{"--state-dir", stateDir}, timeouts...), fmt.Sprint(c.InitPID))...)
	if took := time.Since(start); took > opts.Bound() {
		t.Errorf("fuseguard kill returned after %v, bound %v", took, opts.Bound())
	}
	if rep.Outcome != killer.OutcomeRecovered || !slices.Equal(aborted, []fuseconn.ConnID{c.Conn}) || rep.Target != killer.RecordTarget(rec) {
		t.Fatalf("report: outcome %s, aborted %v, target %+v; want recovered, exactly [%d], the record's %+v", rep.Outcome, aborted, rep.Target, c.Conn, killer.RecordTarget(rec))
	}
	if !slices.ContainsFunc(rep.Diagnosis.Stuck, func(task killer.Task) bool {
		return task.TID == c.InitPID && (task.Blocker == killer.BlockerUnknown && task.Unreadable != "" ||
			task.Unreadable == "" && fixture.InExecFlush(task.Stack))
	}) {
		t.Errorf("init %d in execve neither reported unreadable nor inside execve: %+v", c.InitPID, rep.Diagnosis.Stuck)
	}
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("init not reaped after fuseguard kill")
	}
	if left := c.Tasks(); len(left) > 0 {
		t.Errorf("tasks left behind: %v", left)
	}
}
