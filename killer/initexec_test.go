package killer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
)

// TestKillInitInExecve: the container's init itself sleeps inside execve
// behind an unanswered FLUSH (fixture.W6Init), so its stat, and with it
// the start time that names it, cannot be read. A target that carries no
// cgroup, or another cgroup than init's, is refused with nothing
// signalled or aborted; the target the record names (pid, start time,
// cgroup) is proven by init's status and cgroup instead and rescued
// within the bound: SIGKILL pending, the container's own connection
// aborted, init gone.
func TestKillInitInExecve(t *testing.T) {
	var rec *record.Record
	c := fixture.W6Init(t, func(c *fixture.Container) {
		var err error
		if rec, err = record.NewRecord(proc.NewFS(""), "init-exec", c.InitPID, time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	if rec.Cgroup != c.Cgroup {
		t.Fatalf("record's cgroup %q, init's own %q", rec.Cgroup, c.Cgroup)
	}
	p := proc.NewFS("")
	statBlocks, err := fixture.StatSleeps(c.InitPID)
	if !statBlocks {
		// 6.1, 6.12 (see fixture.InExecFlush): the start time is read and
		// no second proof is needed; only the rescue is checked.
		t.Logf("this kernel answers the stat of a task inside execve (err %v): the refusals are not tested", err)
	}
	opts := testOptions()
	opts.Record = rec
	if statBlocks {
		for _, tc := range []struct {
			name   string
			target Target
			want   error
			names  string // what the error must name
		}{
			{"no cgroup", Target{PID: rec.InitPID, StartTime: rec.InitStartTime}, proc.ErrReadTimeout, "/stat"},
			{"another cgroup", Target{PID: rec.InitPID, StartTime: rec.InitStartTime, Cgroup: rec.Cgroup + "-other"}, ErrUnprovenTarget, fmt.Sprintf("%q is not the recorded", c.Cgroup)},
			{"the root cgroup", Target{PID: rec.InitPID, StartTime: rec.InitStartTime, Cgroup: "/"}, ErrUnprovenTarget, `"/" names no one container`},
		} {
			if _, err := Diagnose(context.Background(), tc.target, opts); !errors.Is(err, tc.want) {
				t.Errorf("Diagnose, %s: err %v, want %v", tc.name, err, tc.want)
			}
			rep, err := Kill(context.Background(), tc.target, opts)
			t.Logf("%s: %v", tc.name, err)
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.names) || rep.Signalled() || len(rep.Aborted) > 0 {
				t.Errorf("%s: err %v, signalled %v, aborted %+v; want %v naming %s, nothing signalled or aborted", tc.name, err, rep.Signalled(), rep.Aborted, tc.want, tc.names)
			}
		}
		st, err := p.Status(c.InitPID)
		if err != nil || (st.SigPnd|st.ShdPnd)&(1<<(unix.SIGKILL-1)) != 0 {
			t.Fatalf("init after the refusals: status %+v, %v; want no SIGKILL pending", st, err)
		}
		if w, err := fuseconn.NewControl("").Waiting(c.Conn); err != nil || w == 0 {
			t.Fatalf("connection %d after the refusals: waiting %d, err %v; want its FLUSH still waiting", c.Conn, w, err)
		}
		select {
		case <-c.Exited():
			t.Fatal("init exited after the refusals")
		default:
		}
	}

	// Diagnose, which never signals, proves init the same way and plans
	// the abort of the container's connection, its FLUSH waiting.
	d, err := Diagnose(context.Background(), RecordTarget(rec), opts)
	switch {
	case err != nil:
		t.Fatalf("Diagnose of init in execve: %v", err)
	case !slices.ContainsFunc(d.Plan, func(a Abort) bool { return a.Conn == c.Conn }):
		t.Errorf("Diagnose of init in execve: plan %+v, refused %+v; want connection %d", d.Plan, d.Refused, c.Conn)
	case statBlocks && (d.Init.TID != c.InitPID || d.Init.Unreadable == "" || d.Init.Comm == ""):
		t.Errorf("Diagnose of init in execve: init %+v; want %d, named, reported unreadable", d.Init, c.InitPID)
	}

	rep := killTargetAndCheck(t, c, RecordTarget(rec), opts, OutcomeRecovered, c.Conn)
	if rep.Target.StartTime != rec.InitStartTime || rep.Target.Cgroup != rec.Cgroup {
		t.Errorf("report's target %+v, want the record's start time %d and cgroup %q", rep.Target, rec.InitStartTime, rec.Cgroup)
	}
	d = rep.Diagnosis
	i := slices.IndexFunc(d.Stuck, func(task Task) bool { return task.TID == c.InitPID })
	switch {
	case i < 0:
		t.Errorf("init %d not among the stuck: %+v", c.InitPID, d.Stuck)
	case statBlocks && (d.Stuck[i].Blocker != BlockerUnknown || !strings.Contains(d.Stuck[i].Unreadable, "kernel stack unreadable")):
		t.Errorf("init in execve: blocker %s, unreadable %q; want %s, its kernel stack unreadable", d.Stuck[i].Blocker, d.Stuck[i].Unreadable, BlockerUnknown)
	case statBlocks && d.Init.Unreadable == "":
		t.Errorf("diagnosis's init %+v: not reported unreadable", d.Init)
	}
	reaped(t, c)
	if left := c.Tasks(); len(left) > 0 {
		t.Errorf("tasks left behind: %v", left)
	}
}
