package killer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// Diagnose explains why a target does not exit: where init is in the
// kernel, which of the container's tasks sleep uninterruptibly, what each
// waits on, and what Kill would abort under opts.Policy. It never signals
// and never aborts, and it reads only /proc and fusectl, never a path on a
// FUSE mount. It returns within opts.DiagnoseTimeout (plus the snapshot
// when opts.Record is nil): what it could not read in time is reported as
// such. A target whose stat does not answer (init asleep inside execve) is
// proven by its cgroup as Kill proves it (see Open).
func Diagnose(ctx context.Context, t Target, opts Options) (*Diagnosis, error) {
	o := opts.withDefaults()
	readCtx, cancel := context.WithTimeout(ctx, o.ReadTimeout())
	defer cancel()
	st, err := o.Proc.Stat(readCtx, t.PID)
	switch {
	case proc.Unanswered(err) && t.Cgroup != "":
		if st, err = provenStat(readCtx, o.Proc, t); err != nil {
			return nil, err
		}
	case errors.Is(err, proc.ErrNoProcess):
		return nil, fmt.Errorf("pid %d: %w", t.PID, ErrNoTarget)
	case err != nil:
		return nil, fmt.Errorf("pid %d: %w", t.PID, err)
	case t.StartTime != 0 && st.StartTime != t.StartTime:
		return nil, fmt.Errorf("pid %d started at tick %d, expected %d: %w", t.PID, st.StartTime, t.StartTime, ErrStaleTarget)
	}
	rec := o.Record
	if rec == nil {
		rec, err = snapshot(o.Proc, st)
		if err != nil {
			o.Log.WithError(err).WithField("pid", t.PID).Debug("no record and no snapshot: scope from ancestry only")
			rec = &record.Record{InitPID: st.PID, InitStartTime: st.StartTime}
		}
	}
	return diagnose(ctx, o, st, rec, nil)
}

// provenStat is the stat of a target whose stat does not answer, proven
// the container's init as Open proves it, as far as status tells it.
func provenStat(ctx context.Context, p proc.FS, t Target) (proc.Stat, error) {
	pr, err := Open(ctx, p, t)
	if err != nil {
		return proc.Stat{}, err
	}
	defer pr.Close()
	return statusStat(p, t.PID), nil
}

// statusStat is what status tells of pid's stat (pid, name, state,
// parent): it answers where stat sleeps, behind a task inside execve.
func statusStat(p proc.FS, pid int) proc.Stat {
	st := proc.Stat{PID: pid}
	if s, err := p.Status(pid); err == nil {
		st.Comm, st.State, st.PPID = s.Name, s.State, s.PPid
	}
	return st
}

// snapshot records what a live init shows before it is signalled: once it is
// in zap_pid_ns_processes its mount table and namespace links are gone.
func snapshot(p proc.FS, st proc.Stat) (*record.Record, error) {
	rec, err := record.NewRecord(p, fmt.Sprintf("pid-%d", st.PID), st.PID, time.Now())
	if err != nil {
		return nil, fmt.Errorf("snapshot of pid %d: %w", st.PID, err)
	}
	return rec, nil
}

// diagnose reads the container's tasks until ctx's deadline or
// o.DiagnoseTimeout, whichever is first, then plans on what it read: a
// diagnosis cut short still plans, only the end of ctx itself is an error.
// held, when not nil, is init's mount table held open since before the
// signal.
func diagnose(ctx context.Context, o Options, initStat proc.Stat, rec *record.Record, held *heldSnapshot) (*Diagnosis, error) {
	scan, cancel := context.WithTimeout(ctx, o.DiagnoseTimeout)
	defer cancel()
	rd := &taskReader{p: o.Proc, ctx: scan, timeout: o.ReadTimeout()}
	d := &Diagnosis{Init: rd.initTask(initStat)}
	d.InitInZap = InZap(d.Init.Stack) ||
		(len(d.Init.Stack) == 0 && d.Init.Wchan == "do_wait" && d.Init.Exiting)
	if len(d.Init.Stack) == 0 && d.InitInZap {
		d.Notes = append(d.Notes, "init's stack is unreadable; wchan do_wait with PF_EXITING taken as zap_pid_ns_processes")
	}

	members, err := members(scan, rd, initStat.PID, rec)
	if err != nil && scan.Err() == nil {
		return d, err
	}
	cut := err != nil
	host := fuseconn.ReadHostTable(o.Proc)
	if host.Err != nil {
		// Nothing learned now is owned; the policy says so per connection.
		d.Notes = append(d.Notes, "host mount table unreadable: "+host.Err.Error()+": ownership of connections seen now unknown, none aborted as owned")
	}
	if err := o.Control.Ensure(); err != nil {
		d.Notes = append(d.Notes, "fusectl: "+err.Error())
	}
	// Generations before and after every mount table is read: a
	// connection is the container's only if a live table shows it and its
	// instance held throughout (ids are reused at once).
	before, err := o.Control.Generations()
	if err != nil {
		d.Notes = append(d.Notes, "connection generations unreadable, nothing provable: "+err.Error())
	}
	conns := newConnSet(rec, host, before)
	if infos, err := o.Proc.MountInfo(initStat.PID); err == nil {
		// Readable while init is alive and not yet in zap_pid_ns_processes.
		conns.learnTable(fuseconn.FUSEMounts(infos), "init's mount table")
	}
	if held != nil {
		if mounts, err := held.mounts(); err != nil {
			d.Notes = append(d.Notes, "init's held mount table unreadable: "+err.Error())
		} else {
			conns.learnTable(mounts, "init's mount table (held since before the signal)")
		}
	}
scan:
	for _, tgid := range members {
		tids, err := o.Proc.Tasks(tgid)
		if err != nil {
			continue // the group exited while we looked
		}
		for _, tid := range tids {
			if scan.Err() != nil {
				cut = true
				break scan
			}
			// status, not stat: it never sleeps behind a task inside execve.
			st, err := o.Proc.Status(tid)
			if err != nil || st.State != "D" {
				continue
			}
			task := rd.task(tid, st)
			task.TGID = tgid
			switch {
			case task.Unreadable != "":
				task.Blocker = BlockerUnknown
				d.Notes = append(d.Notes, task.unreadable()+"; no fd evidence, the plan rests on the record and the waiting counts")
			default:
				task.Blocker = classify(task.Stack)
			}
			// Every stuck member's mount table is a live table of the
			// container, whatever the task waits on: mountinfo answers even
			// behind a task's exec lock (see package proc), so a task whose
			// stack is unreadable still shows which connections are mounted.
			own := conns.learn(o.Proc, tid)
			if task.Blocker == BlockerFUSERequest || task.Blocker == BlockerFUSEFlush {
				rctx, cancel := context.WithTimeout(scan, rd.timeout)
				task.Conn, task.Via, task.HasConn = waitedOn(rctx, o.Proc, tid, own)
				cancel()
				if task.HasConn {
					if why := untrustedFD(task.Stack); why != "" {
						task.Untrusted = fmt.Sprintf("%s names connection %s, but %s", task.Via, task.Conn, why)
						task.Conn, task.Via, task.HasConn = 0, "", false
					}
				}
			}
			d.Stuck = append(d.Stuck, task)
		}
	}
	if err := ctx.Err(); err != nil {
		return d, err
	}
	if cut {
		d.Notes = append(d.Notes, fmt.Sprintf("diagnosis cut short after %v: tasks not yet read are left out", o.DiagnoseTimeout))
	}
	var after map[fuseconn.ConnID]fuseconn.Generation
	if before != nil {
		if after, err = o.Control.Generations(); err != nil {
			d.Notes = append(d.Notes, "connection generations unreadable, nothing provable: "+err.Error())
		}
	}
	d.Connections = conns.states(after, o.Control.WaitingInstance)
	o.Policy.dedicate(rd, rec, host, d.Connections)
	d.Plan, d.Refused = o.Policy.plan(d.Stuck, d.Connections)
	return d, nil
}

// taskReader reads tasks for one diagnosis: each read that can block (see
// package proc) gets its own short deadline within the diagnosis's.
type taskReader struct {
	p       proc.FS
	ctx     context.Context
	timeout time.Duration
}

// bounded runs one read of rd's tasks under its own deadline.
func bounded[T any](rd *taskReader, read func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(rd.ctx, rd.timeout)
	defer cancel()
	return read(ctx)
}

// initTask reads init. In a multi-threaded init the leader may already be a
// zombie while another of its threads waits in zap_pid_ns_processes: that
// thread is the one to show.
func (rd *taskReader) initTask(st proc.Stat) Task {
	leader := rd.task(st.PID, proc.Status{Name: st.Comm, State: st.State})
	leader.Exiting = st.Exiting()
	if InZap(leader.Stack) {
		return leader
	}
	tids, _ := rd.p.Tasks(st.PID)
	for _, tid := range tids {
		if tid == st.PID {
			continue
		}
		tst, err := rd.p.Status(tid)
		if err != nil {
			continue
		}
		if t := rd.task(tid, tst); InZap(t.Stack) {
			t.TGID = st.PID
			return t
		}
	}
	return leader
}

// task reads what a diagnosis shows of one task, given its status;
// unreadable parts stay empty, and a stack that cannot be read says why.
func (rd *taskReader) task(tid int, st proc.Status) Task {
	t := Task{TID: tid, TGID: tid, Comm: st.Name, State: st.State}
	if s, err := bounded(rd, func(ctx context.Context) (proc.Stat, error) { return rd.p.Stat(ctx, tid) }); err == nil {
		t.Comm, t.State, t.Exiting = s.Comm, s.State, s.Exiting()
	}
	if stack, err := bounded(rd, func(ctx context.Context) (proc.Stack, error) { return rd.p.Stack(ctx, tid) }); err == nil {
		t.Stack = stack
	} else {
		if proc.Unanswered(err) {
			t.Unreadable = "kernel stack unreadable: " + err.Error()
		}
		if w, err := bounded(rd, func(ctx context.Context) (string, error) { return rd.p.Wchan(ctx, tid) }); err == nil {
			t.Wchan = w
		}
	}
	if status, err := rd.p.Status(tid); err == nil {
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
func members(ctx context.Context, rd *taskReader, initPID int, rec *record.Record) ([]int, error) {
	p := rd.p
	out, err := p.Descendants(initPID)
	if err != nil {
		return nil, fmt.Errorf("descendants of %d: %w", initPID, err)
	}
	self := os.Getpid()
	useCgroup := containerCgroup(p, rec.Cgroup)
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
			ns, err := bounded(rd, func(ctx context.Context) (uint64, error) { return p.NamespaceInode(ctx, pid, "pid") })
			if err == nil && ns == rec.PidNS {
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
