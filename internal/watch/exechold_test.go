package watch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// execHoldBound is how long after init's exit began the watcher may take
// to end a stuck exit: the grace, one check interval to notice it, and the
// rescue's own bound, which killer.Kill enforces.
func execHoldBound(o Options) time.Duration {
	o = o.withDefaults()
	return o.Grace + o.CheckInterval + RescueBound(o.RecoverTimeout)
}

// TestExecHoldRescued: the exec-hold wedge (W6) through the watcher. A task
// of the container sleeps inside execve, flushing a close-on-exec file on
// the container's FUSE mount whose FLUSH is never answered, and holds its
// exec lock: its stack and syscall cannot be read (where the kernel
// blocks such reads; see fixture.InExecFlush). Init exits on its own
// and waits for it in zap_pid_ns_processes. The rescue returns within its
// bound, reports the task as unreadable, aborts the container's own
// connection, and the next, unrelated wedged container is still rescued.
func TestExecHoldRescued(t *testing.T) {
	dir := testenv.StateDir(t)
	log, hook := testLogger(t)
	o := Options{CheckInterval: boundCheck, Log: log}
	r := startWatcher(t, dir, o)
	c := fixture.W6(t, 1)
	rec := saveRecord(t, dir, "exec-hold", c.InitPID)
	r.ev.waitRecorded(t, rec.ID, c.Conn, 2*time.Second)

	bound := execHoldBound(o)
	killRescued(t, r, c, bound, "W6")
	ev := r.ev.wait(t, EventRescued, rec.ID, time.Second)
	if ev.Report == nil {
		t.Fatalf("rescue without a report: %v", ev.Err)
	}
	if got := aborted(ev.Report); !slices.Equal(got, []fuseconn.ConnID{c.Conn}) {
		t.Errorf("aborted %v, want [%d]", got, c.Conn)
	}
	d := ev.Report.Diagnosis
	if d == nil {
		t.Fatal("rescue report has no diagnosis")
	}
	i := slices.IndexFunc(d.Stuck, func(task killer.Task) bool { return task.TID == c.ExecPID })
	if i < 0 {
		t.Fatalf("task %d in execve not among the stuck: %+v", c.ExecPID, d.Stuck)
	}
	// Unreadable, or, where the kernel answers reads of a task inside
	// execve (6.1, 6.12; see fixture.InExecFlush), diagnosed from its stack.
	if task := d.Stuck[i]; task.Unreadable == "" && !fixture.InExecFlush(task.Stack) ||
		task.Unreadable != "" && !strings.Contains(task.Unreadable, proc.ErrReadTimeout.Error()) {
		t.Errorf("task in execve: unreadable %q, stack %s; want a read timeout, or a FUSE flush inside execve", task.Unreadable, task.Stack)
	} else if task.Unreadable != "" {
		// The rescue's log line names it, for the operator.
		want := fmt.Sprintf("task %d (", c.ExecPID)
		if !slices.ContainsFunc(hook.AllEntries(), func(e *logrus.Entry) bool {
			u, _ := e.Data["unreadable"].([]string)
			return e.Data["container"] == rec.ID && slices.ContainsFunc(u, func(l string) bool {
				return strings.HasPrefix(l, want) && strings.Contains(l, proc.ErrReadTimeout.Error())
			})
		}) {
			t.Errorf("no rescue log line names the unreadable task %d", c.ExecPID)
		}
	}
	if left := c.Tasks(); len(left) > 0 {
		t.Errorf("tasks left behind: %v", left)
	}

	next := fixture.W2(t, "read")
	recNext := saveRecord(t, dir, "next", next.InitPID)
	r.ev.waitRecorded(t, recNext.ID, next.Conn, 2*time.Second)
	killRescued(t, r, next, bound, "the next wedged container")
}

// TestExecHoldInitLeavesLoopRunning: a container whose init itself sleeps
// inside execve behind an unanswered FLUSH (fixture.W6Init). Reading its
// /proc/PID/stat sleeps on its exec lock; the watcher's loop reads it
// bounded, so another container's stuck exit is still rescued within the
// grace and a second. The watcher rescues only an init that exits, and this
// one does not: it is left as it is.
func TestExecHoldInitLeavesLoopRunning(t *testing.T) {
	dir := testenv.StateDir(t)
	r := startWatcher(t, dir, Options{CheckInterval: boundCheck})
	var recHeld *record.Record
	held := fixture.W6Init(t, func(c *fixture.Container) {
		recHeld = saveRecord(t, dir, "exec-hold-init", c.InitPID)
		r.ev.waitRecorded(t, recHeld.ID, c.Conn, 2*time.Second)
	})
	// Init sleeps in execve: give the loop checks that read its stat.
	time.Sleep(3 * boundCheck)

	// status reports such an init as unreadable where the kernel blocks
	// the read of its stat (5.10, 6.18), running where it answers.
	want := InitRunning
	if sleeps, _ := fixture.StatSleeps(held.InitPID); sleeps {
		want = InitUnreadable
	}
	st := ReadStatus(context.Background(), proc.NewFS(""), record.Store{Dir: dir}, fuseconn.NewControl(""))
	if i := slices.IndexFunc(st.Containers, func(c Tracked) bool { return c.ID == recHeld.ID }); i < 0 || st.Containers[i].Init != want {
		t.Errorf("status of the init inside execve: %+v, want init %q", st.Containers, want)
	}

	wedged := fixture.W2(t, "read")
	recWedged := saveRecord(t, dir, "wedged", wedged.InitPID)
	r.ev.waitRecorded(t, recWedged.ID, wedged.Conn, 2*time.Second)
	killRescued(t, r, wedged, isoBound, "a wedged container beside an init inside execve")
	select {
	case <-held.Exited():
		t.Fatal("the exec-hold init exited: the test did not hold it in execve")
	default:
	}
}

// explainRescues is every rescue report's diagnosis, as an operator reads it.
func explainRescues(r *running) string {
	var b strings.Builder
	for _, ev := range r.ev.all() {
		if ev.Kind == EventRescued && ev.Report != nil {
			fmt.Fprintf(&b, "rescue of %s: outcome %s, aborted %v, refused %+v\n", ev.ID, ev.Report.Outcome, ev.Report.Aborted, ev.Report.Refused)
			if ev.Report.Diagnosis != nil {
				ev.Report.Diagnosis.Explain(&b)
			}
		}
	}
	return b.String()
}
