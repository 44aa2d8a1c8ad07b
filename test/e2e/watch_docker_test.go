package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fgwatch"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
	"github.com/fuseguard/fuseguard/test/wedgefs"
)

// rescueSlack is what the issue allows past the grace between init's
// exit and Docker reporting the container exited.
const rescueSlack = 2 * time.Second

// selfExitW2 is W2 whose main process exits on its own after delay: sh
// (init) exits while the daemon's own thread waits on its unanswered READ,
// so the kernel leaves init in zap_pid_ns_processes. No one kills it.
func selfExitW2(delay string) []string {
	return []string{"sh", "-c", "/fusefixture serve -mode read -mount /mnt -self-read & sleep " + delay + "; exit 0"}
}

// TestDockerWatcher runs the watcher scenarios against one dockerd. Each
// subtest has its own runtime and state directory, with the hooks at
// their default: the first container's hook starts the watcher. Nothing
// here kills a container; the watcher alone must rescue it.
func TestDockerWatcher(t *testing.T) {
	testenv.RequireLong(t)
	names := []string{"exit", "restart", "late", "slow", "shared"}
	dirs := map[string]string{}
	runtimes := map[string]string{}
	for _, n := range names {
		dirs[n] = testenv.StateDir(t)
		// Unset TestMain's FUSEGUARD_WATCHER=0: the default is under test.
		runtimes["fg-"+n] = fgcmd.RuntimeScript(t, dirs[n], "-u", "FUSEGUARD_WATCHER")
	}
	d, image := startDaemon(t, runtimes)
	// sub is a subtest's view of the daemon; the watcher its hooks start
	// is stopped when the subtest ends.
	sub := func(t *testing.T, name string) (*dockerEnv, string) {
		e := &dockerEnv{d: d, image: image, stateDir: dirs[name]}
		t.Cleanup(func() { fgwatch.StopWatcher(t, e.stateDir) })
		return e, "fg-" + name
	}

	t.Run("W2-exits-by-itself", func(t *testing.T) {
		e, rt := sub(t, "exit")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := e.start(t, ctx, rt, "serve", nil, selfExitW2("2")...)
		wpid := hookWatcher(t, e.stateDir)
		assertDetached(t, wpid, e.stateDir)
		// Outside the container's cgroup: its teardown must not kill it.
		p := proc.NewFS("")
		wcg, err1 := p.Cgroup(wpid)
		icg, err2 := p.Cgroup(a.pid)
		if err1 != nil || err2 != nil || wcg == icg {
			t.Errorf("watcher cgroup %q (%v), container's %q (%v): want apart", wcg, err1, icg, err2)
		}

		exit := waitExiting(t, a.pid, 10*time.Second)
		assertWedged(t, a.pid, exit)
		e.assertRescued(t, ctx, a, exit, watch.LogName)
	})

	t.Run("watcher-restarted-mid-wedge", func(t *testing.T) {
		e, rt := sub(t, "restart")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := e.start(t, ctx, rt, "serve", nil, selfExitW2("2")...)
		killWatcher(t, e.stateDir, hookWatcher(t, e.stateDir))

		exit := waitExiting(t, a.pid, 10*time.Second)
		// Past the grace with no watcher: still wedged, Docker still says running.
		time.Sleep(time.Until(exit.Add(watch.DefaultGrace + time.Second)))
		if st, err := e.d.Inspect(ctx, a.id); err != nil || !st.Running {
			t.Fatalf("without a watcher: %+v %v, want still running (wedged)", st, err)
		}
		restart := time.Now()
		fgwatch.StartWatcher(t, e.stateDir, "restarted.log")
		e.assertRescued(t, ctx, a, restart, "restarted.log")
		if lines := fgcmd.LogLinesBy(filepath.Join(e.stateDir, watch.LogName), "container", a.id); slices.ContainsFunc(lines, fgwatch.IsAbort) {
			t.Errorf("the killed watcher aborted something:\n%s", strings.Join(lines, "\n"))
		}
	})

	t.Run("late-mount", func(t *testing.T) {
		e, rt := sub(t, "late")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := e.start(t, ctx, rt, "serve", nil, "sh", "-c",
			"(sleep 3; exec /fusefixture serve -mode read -mount /mnt -self-read) & sleep 5; exit 0")
		seen := time.Now()
		hookWatcher(t, e.stateDir)
		// The hook could not see the mount (it came 3 s after start; the
		// hook may see host FUSE mounts, which are not this one): the
		// connection was first seen by the watcher, seconds after the record.
		rec := waitRecorded(t, e.stateDir, a.id, a.conn, seen.Add(time.Second))
		c := rec.Connections[slices.IndexFunc(rec.Connections, func(c record.RecordedConnection) bool { return uint32(c.Conn) == a.conn })]
		if !c.Owned || c.FirstSeen.Sub(rec.Created) < 2*time.Second {
			t.Fatalf("late connection %+v in a record created %v: want owned, first seen ≥ 2 s after", c, rec.Created)
		}
		exit := waitExiting(t, a.pid, 10*time.Second)
		e.assertRescued(t, ctx, a, exit, watch.LogName)
	})

	t.Run("slow-healthy-exit", func(t *testing.T) {
		e, rt := sub(t, "slow")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// init (sh) takes 3 s to exit after SIGTERM; the FUSE daemon answers.
		a := e.start(t, ctx, rt, "hold", nil, "sh", "-c",
			"trap 'sleep 3; exit 0' TERM; /fusefixture serve -mode healthy -mount /mnt -- /fusefixture hold /mnt/"+wedgefs.DataFile+" & wait")
		hookWatcher(t, e.stateDir)
		waitRecorded(t, e.stateDir, a.id, a.conn, time.Now().Add(2*time.Second))
		begin := time.Now()
		if _, _, err := e.d.Docker(ctx, "kill", "-s", "TERM", a.id); err != nil {
			t.Fatal(err)
		}
		// The connection lives until init exits: nothing aborts it meanwhile.
		var lastAlive time.Time
		for {
			st, err := e.d.Inspect(ctx, a.id)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Running {
				if st.ExitCode != 0 {
					t.Fatalf("slow exit: %+v, want exit 0 from the trap", st)
				}
				break
			}
			if connExists(a.conn) {
				lastAlive = time.Now()
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(begin)
		t.Logf("slow exit took %v; connection alive until %v after SIGTERM", took.Round(time.Millisecond), lastAlive.Sub(begin).Round(time.Millisecond))
		if took < watch.DefaultGrace || lastAlive.Sub(begin) < watch.DefaultGrace {
			t.Fatalf("exit took %v, connection alive for %v: want both past the %v grace", took, lastAlive.Sub(begin), watch.DefaultGrace)
		}
		lines := waitForgotten(t, e.stateDir, a.id)
		if slices.ContainsFunc(lines, func(l string) bool { return fgwatch.IsAbort(l) || strings.Contains(l, "stuck exit detected") }) {
			t.Fatalf("the watcher touched a slow healthy exit:\n%s", strings.Join(lines, "\n"))
		}
		if err := e.d.Rm(ctx, a.id, false); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("W5-shared-never-aborted", func(t *testing.T) {
		e, rt := sub(t, "shared")
		host := fixture.HostMount(t, "lxcfs")
		hostConn := uint32(host.Conn)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := e.start(t, ctx, rt, "serve", []string{"-v", host.Dir + ":/shared"}, selfExitW2("2")...)
		hookWatcher(t, e.stateDir)
		rec := waitRecorded(t, e.stateDir, a.id, hostConn, time.Now().Add(2*time.Second))
		if i := slices.IndexFunc(rec.Connections, func(c record.RecordedConnection) bool { return uint32(c.Conn) == hostConn }); rec.Connections[i].Owned {
			t.Fatalf("host connection recorded as owned: %+v", rec.Connections[i])
		}
		exit := waitExiting(t, a.pid, 10*time.Second)
		e.assertRescued(t, ctx, a, exit, watch.LogName)
		assertHostServes(t, host)
	})
}

// assertRescued waits for Docker to report a exited and asserts that it
// did within the grace plus rescueSlack of since (by Docker's own
// FinishedAt), that the watcher logging to logName aborted exactly a's
// connection, and that the container and its record can be removed.
func (e *dockerEnv) assertRescued(t *testing.T, ctx context.Context, a armed, since time.Time, logName string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, watch.DefaultGrace+rescueSlack+10*time.Second)
	defer cancel()
	st, err := e.d.WaitExited(wctx, a.id)
	wlog := filepath.Join(e.stateDir, logName)
	if err != nil {
		t.Fatalf("not rescued: %+v %v\n%s:\n%s", st, err, logName, mustRead(wlog))
	}
	finished := finishedAt(t, ctx, e.d, a.id)
	took := finished.Sub(since)
	t.Logf("Docker's FinishedAt is %v after the exit (grace %v)", took.Round(time.Millisecond), watch.DefaultGrace)
	if took > watch.DefaultGrace+rescueSlack || took < 0 {
		t.Errorf("exited %v after %v, want within grace %v + %v", took, since.Format(time.RFC3339Nano), watch.DefaultGrace, rescueSlack)
	}
	if st.ExitCode != 0 {
		t.Errorf("exit code %d, want sh's 0", st.ExitCode)
	}
	waitForgotten(t, e.stateDir, a.id, logName)
	fgwatch.AssertRescued(t, wlog, a.id, fuseconn.ConnID(a.conn))
	if err := e.d.Rm(ctx, a.id, false); err != nil {
		t.Fatal(err)
	}
	e.waitNoRecord(t, a.id)
}

// waitForgotten waits until the watcher's log (watch.log, or logName)
// says it forgot id, and returns its lines about id.
func waitForgotten(t *testing.T, dir, id string, logName ...string) []string {
	t.Helper()
	path := filepath.Join(dir, watch.LogName)
	if len(logName) > 0 {
		path = filepath.Join(dir, logName[0])
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := fgcmd.LogLinesBy(path, "container", id)
		if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, `"msg":"forgot container"`) }) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher never forgot %.12s:\n%s", id, mustRead(path))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRecorded polls id's record until it holds conn, failing t after
// deadline.
func waitRecorded(t *testing.T, dir, id string, conn uint32, deadline time.Time) *record.Record {
	t.Helper()
	for {
		rec, err := record.Store{Dir: dir}.Load(id)
		if err == nil && slices.ContainsFunc(rec.Connections, func(c record.RecordedConnection) bool { return uint32(c.Conn) == conn }) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %d not in the record of %.12s in time: %+v %v\nwatch.log:\n%s", conn, id, rec, err, mustRead(filepath.Join(dir, watch.LogName)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExiting polls init's PF_EXITING and returns when it was first seen.
func waitExiting(t *testing.T, pid int, timeout time.Duration) time.Time {
	t.Helper()
	p := proc.NewFS("")
	deadline := time.Now().Add(timeout)
	for {
		st, err := p.Stat(context.Background(), pid)
		if err != nil {
			t.Fatalf("init %d: %v (it should be wedged, not gone)", pid, err)
		}
		if st.Exiting() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("init %d not exiting after %v: %+v", pid, timeout, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertWedged checks, inside the grace, the W2 shape: init waits in
// zap_pid_ns_processes and a task of its FUSE daemon is in D.
func assertWedged(t *testing.T, pid int, exit time.Time) {
	t.Helper()
	var zap bool
	var stuck []int
	for time.Since(exit) < watch.DefaultGrace/2 {
		zap, stuck = fixture.WedgeShape(context.Background(), pid)
		if zap && len(stuck) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("init %d: in zap_pid_ns_processes %v, tasks in D %v: not the W2 wedge", pid, zap, stuck)
}

// finishedAt is Docker's own record of when the container exited.
func finishedAt(t *testing.T, ctx context.Context, d *dockerd.Daemon, id string) time.Time {
	t.Helper()
	out, _, err := d.Docker(ctx, "inspect", "-f", "{{.State.FinishedAt}}", id)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("FinishedAt %q: %v", out, err)
	}
	return ts
}

// hookWatcher returns the watcher the hook started on dir, failing t if
// none holds the lock: the test started none.
func hookWatcher(t *testing.T, dir string) int {
	t.Helper()
	pid, err := watch.Holder(dir)
	if err != nil || pid <= 0 {
		t.Fatalf("no watcher holds %s after the hooks ran: pid %d, %v\nhook.log:\n%s", dir, pid, err, mustRead(filepath.Join(dir, "hook.log")))
	}
	if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); !strings.Contains(string(cmd), "watch\x00--state-dir\x00"+dir+"\x00") {
		t.Fatalf("lock holder %d runs %q, not the watcher of %s", pid, cmd, dir)
	}
	return pid
}

// assertDetached checks that the hook's watcher holds nothing of the
// runtime's: its own session, cwd /, stdin /dev/null, output to watch.log,
// no pipe or socket (the runtime's and the container's stdio are pipes)
// but its own generic netlink socket (the taskstats exit notifications).
func assertDetached(t *testing.T, pid int, dir string) {
	t.Helper()
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("watcher %d: session %d (%v), want its own", pid, sid, err)
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != "/" {
		t.Errorf("watcher %d: cwd %q (%v), want /", pid, cwd, err)
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"0": "/dev/null", "1": filepath.Join(dir, watch.LogName), "2": filepath.Join(dir, watch.LogName)}
	own := genericNetlinkSockets(t, pid)
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if w, ok := want[e.Name()]; ok && target != w {
			t.Errorf("watcher %d: fd %s is %s, want %s", pid, e.Name(), target, w)
		}
		if own[target] {
			continue
		}
		if strings.HasPrefix(target, "pipe:") || strings.HasPrefix(target, "socket:") {
			t.Errorf("watcher %d: fd %s is %s: inherited from the runtime", pid, e.Name(), target)
		}
	}
}

// genericNetlinkSockets returns, as fd link targets ("socket:[INODE]"), the
// NETLINK_GENERIC sockets that pid bound itself (/proc/PID/net/netlink: the
// protocol is the second column, the port id — pid for a process's first
// netlink socket — the third, the inode the last).
func genericNetlinkSockets(t *testing.T, pid int) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/netlink", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 10 && f[1] == strconv.Itoa(unix.NETLINK_GENERIC) && f[2] == strconv.Itoa(pid) {
			out["socket:["+f[len(f)-1]+"]"] = true
		}
	}
	return out
}

// killWatcher SIGKILLs the watcher pid of dir and waits until the lock is
// free.
func killWatcher(t *testing.T, dir string, pid int) {
	t.Helper()
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if h, err := watch.Holder(dir); err == nil && h == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher %d still holds %s after SIGKILL", pid, dir)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
