package killer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/proc"
)

// Diagnose explains why a target does not exit: where init is in the
// kernel, which of the container's tasks sleep uninterruptibly, what each
// waits on, and what Kill would abort under opts.Policy. It never signals
// and never aborts, and it reads only /proc and fusectl, never a path on a
// FUSE mount.
func Diagnose(ctx context.Context, t Target, opts Options) (*Diagnosis, error) {
	o := opts.withDefaults()
	st, err := o.Proc.Stat(t.PID)
	if err != nil {
		if errors.Is(err, proc.ErrNoProcess) {
			return nil, fmt.Errorf("pid %d: %w", t.PID, ErrNoTarget)
		}
		return nil, fmt.Errorf("pid %d: %w", t.PID, err)
	}
	if t.StartTime != 0 && st.StartTime != t.StartTime {
		return nil, fmt.Errorf("pid %d started at tick %d, expected %d: %w", t.PID, st.StartTime, t.StartTime, ErrStaleTarget)
	}
	rec := o.Record
	if rec == nil {
		rec, err = snapshot(o.Proc, st)
		if err != nil {
			o.Log.WithError(err).WithField("pid", t.PID).Debug("no record and no snapshot: scope from ancestry only")
			rec = &fuseguard.Record{InitPID: st.PID, InitStartTime: st.StartTime}
		}
	}
	return diagnose(ctx, o, st, rec)
}

// snapshot records what a live init shows before it is signalled: once it is
// in zap_pid_ns_processes its mount table and namespace links are gone.
func snapshot(p proc.FS, st proc.Stat) (*fuseguard.Record, error) {
	rec, err := fuseguard.NewRecord(p, fmt.Sprintf("pid-%d", st.PID), st.PID, time.Now())
	if err != nil {
		return nil, fmt.Errorf("snapshot of pid %d: %w", st.PID, err)
	}
	return rec, nil
}

func diagnose(ctx context.Context, o Options, initStat proc.Stat, rec *fuseguard.Record) (*Diagnosis, error) {
	d := &Diagnosis{Init: initTask(o.Proc, initStat)}
	d.InitInZap = inZap(d.Init.Stack) ||
		(len(d.Init.Stack) == 0 && d.Init.Wchan == "do_wait" && d.Init.Exiting)
	if len(d.Init.Stack) == 0 && d.InitInZap {
		d.Notes = append(d.Notes, "init's stack is unreadable; wchan do_wait with PF_EXITING taken as zap_pid_ns_processes")
	}

	members, err := members(ctx, o.Proc, initStat.PID, rec)
	if err != nil {
		return d, err
	}
	conns := newConnSet(rec)
	host := fuseguard.ReadHostTable(o.Proc)
	if host.Err != nil {
		// Nothing learned now is owned; the policy says so per connection.
		d.Notes = append(d.Notes, "host mount table unreadable: "+host.Err.Error()+": ownership of connections seen now unknown, none aborted as owned")
	}
	for _, tgid := range members {
		tids, err := o.Proc.Tasks(tgid)
		if err != nil {
			continue // the group exited while we looked
		}
		for _, tid := range tids {
			if err := ctx.Err(); err != nil {
				return d, err
			}
			st, err := o.Proc.Stat(tid)
			if err != nil || st.State != "D" {
				continue
			}
			task := readTask(o.Proc, tid, st)
			task.TGID = tgid
			task.Blocker = classify(task.Stack)
			if task.Blocker != BlockerOther {
				conns.learn(o.Proc, tid, host)
				task.Conn, task.Via, task.HasConn = conns.waitedOn(o.Proc, tid)
			}
			d.Stuck = append(d.Stuck, task)
		}
	}
	if err := o.Control.Ensure(); err != nil {
		d.Notes = append(d.Notes, "fusectl: "+err.Error())
	}
	for _, c := range conns.list {
		cs := ConnState{Connection: c, Live: o.Control.Exists(c.Conn)}
		if cs.Live {
			if w, err := o.Control.Waiting(c.Conn); err != nil {
				cs.Err = err.Error()
			} else {
				cs.Waiting = w
			}
		}
		d.Connections = append(d.Connections, cs)
	}
	d.Plan, d.Refused = o.Policy.plan(d.Stuck, d.Connections)
	return d, nil
}

// initTask reads init. In a multi-threaded init the leader may already be a
// zombie while another of its threads waits in zap_pid_ns_processes: that
// thread is the one to show.
func initTask(p proc.FS, st proc.Stat) Task {
	leader := readTask(p, st.PID, st)
	if inZap(leader.Stack) {
		return leader
	}
	tids, _ := p.Tasks(st.PID)
	for _, tid := range tids {
		if tid == st.PID {
			continue
		}
		tst, err := p.Stat(tid)
		if err != nil {
			continue
		}
		if t := readTask(p, tid, tst); inZap(t.Stack) {
			t.TGID = st.PID
			return t
		}
	}
	return leader
}

// readTask reads what a diagnosis shows of one task; unreadable parts stay empty.
func readTask(p proc.FS, tid int, st proc.Stat) Task {
	t := Task{TID: tid, TGID: tid, Comm: st.Comm, State: st.State, Exiting: st.Exiting()}
	if stack, err := p.Stack(tid); err == nil {
		t.Stack = stack
	} else if w, err := p.Wchan(tid); err == nil {
		t.Wchan = w
	}
	if status, err := p.Status(tid); err == nil {
		t.TGID = status.Tgid
		t.SigPnd = signalNames(status.SigPnd)
		t.ShdPnd = signalNames(status.ShdPnd)
	}
	return t
}

// members finds the thread groups of the container: init's descendants
// (while init waits in zap_pid_ns_processes every task of the namespace is
// its child), plus those in the recorded PID namespace or (non-root) cgroup,
// which also catches tasks entered from outside, like `docker exec`. Init's
// own ns links are gone once it is in zap_pid_ns_processes, so the namespace
// comes from the record, never from init.
func members(ctx context.Context, p proc.FS, initPID int, rec *fuseguard.Record) ([]int, error) {
	out, err := p.Descendants(initPID)
	if err != nil {
		return nil, fmt.Errorf("descendants of %d: %w", initPID, err)
	}
	self := os.Getpid()
	ownCgroup, _ := p.Cgroup(self)
	useCgroup := rec.Cgroup != "" && rec.Cgroup != "/" && rec.Cgroup != ownCgroup
	if rec.PidNS == 0 && !useCgroup {
		return out, nil
	}
	pids, err := p.PIDs()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if pid == self {
			continue
		}
		if rec.PidNS != 0 {
			if ns, err := p.NamespaceInode(pid, "pid"); err == nil && ns == rec.PidNS {
				out = append(out, pid)
				continue
			}
		}
		if useCgroup {
			if cg, err := p.Cgroup(pid); err == nil && cg == rec.Cgroup {
				out = append(out, pid)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
