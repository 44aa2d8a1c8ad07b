package podman_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fgwatch"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/podman"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// Bounds the tests assert.
const (
	// testGrace is the --grace of the watcher the test starts: how long
	// init may be exiting before the watcher rescues it. Short, so the
	// tests are quick.
	testGrace = time.Second
	// rmBound is what `podman rm -f` of an exited container may take.
	rmBound = 10 * time.Second
	// poststopBound is how long after the exit poststop may take to remove
	// the record (podman runs it when it cleans the container up).
	poststopBound = 10 * time.Second
	// goneBound is how long after `podman rm` returns the container's
	// processes may take to be gone (conmon exits after it reported).
	goneBound = 5 * time.Second
	// removeTimeout bounds a `podman rm -f` that fails (podman 4.3 gives
	// up on a container whose init does not die after about 10 s).
	removeTimeout = 30 * time.Second
)

// env is one private podman with the project's hooks.d files and a node
// watcher, shared by the subtests of a test.
type env struct {
	p        *podman.Podman
	image    string
	stateDir string
	watcher  int           // its pid
	grace    time.Duration // its --grace
	hookMade bool          // a hook started it, not the test
}

// rescueBound is how long after `podman kill` a wedged container may take
// to reach exited: the watcher's grace, one check interval to notice it,
// the rescue's own bound (watch.RescueBound: diagnosis, aborts and the wait
// for init after them), and 2 s for conmon to report the exit.
func (e *env) rescueBound() time.Duration {
	return e.grace + watch.DefaultCheckInterval + watch.RescueBound(killer.DefaultRecoverTimeout) + 2*time.Second
}

// killTimeout bounds `podman kill`, which waits for conmon after a SIGKILL
// (podman 4.3 gives up after 5 s): past the rescue bound, so a kill that
// fails says so rather than being cut off.
func (e *env) killTimeout() time.Duration { return e.rescueBound() + 10*time.Second }

// start sets up the podman, the test image (busybox-static and
// /fusefixture) and a watcher on the state dir, started before any
// container so that the hooks find it running.
func start(t *testing.T) *env {
	t.Helper()
	testenv.RequireLong(t)
	testenv.RequireFUSE(t)
	e := &env{stateDir: testenv.StateDir(t), grace: testGrace}
	e.watcher = fgwatch.StartWatcher(t, e.stateDir, watch.LogName, "--grace", testGrace.String())
	e.p = podman.Start(t, fgcmd.Binary(t), e.stateDir)
	e.image = e.p.ImportImage(t, "localhost/fgtest/podman:latest", map[string]string{"/fusefixture": fixture.Binary(t)})
	return e
}

// TestPodmanHooksD runs containers under podman with fuseguard's hooks.d
// files: a healthy one is recorded at start and forgotten at stop, and a
// container wedged in FUSE is rescued by the watcher after `podman kill`.
func TestPodmanHooksD(t *testing.T) {
	e := start(t)

	t.Run("healthy", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		id, err := e.p.RunDetached(ctx, e.image, nil, "sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait")
		if err != nil {
			t.Fatal(err)
		}
		st, err := e.p.Inspect(ctx, id)
		if err != nil || !st.Running {
			t.Fatalf("started container: %+v %v", st, err)
		}
		// `podman run -d` returns after poststart: the record is there.
		rec, err := record.Store{Dir: e.stateDir}.Load(id)
		if err != nil {
			t.Fatalf("no record after start: %v\nhook.log:\n%s", err, readFile(filepath.Join(e.stateDir, "hook.log")))
		}
		if rec.InitPID != st.Pid {
			t.Errorf("record's init pid %d, podman's %d", rec.InitPID, st.Pid)
		}
		e.assertHooksRan(t, id, "createRuntime", "poststart")

		if _, _, err := e.p.Podman(ctx, "stop", "--time", "5", id); err != nil {
			t.Fatal(err)
		}
		st, err = e.p.Inspect(ctx, id)
		if err != nil || st.Status != "exited" || st.ExitCode != 0 {
			t.Fatalf("after podman stop: %+v %v, want exited 0 (the trap)", st, err)
		}
		e.waitNoRecord(t, id, time.Now().Add(poststopBound))
		if _, _, err := e.p.Podman(ctx, "rm", id); err != nil {
			t.Fatal(err)
		}
		e.assertGone(t, id, st)
		if lines := fgcmd.LogLinesBy(filepath.Join(e.stateDir, watch.LogName), "container", id); slices.ContainsFunc(lines, fgwatch.IsAbort) {
			t.Errorf("the watcher aborted something of a healthy container:\n%s", strings.Join(lines, "\n"))
		}
	})

	for _, mode := range []string{"read", "lookup"} {
		t.Run("W2-"+mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			e.killRescued(t, ctx, mode)
		})
	}

	// `podman rm -f` straight away: podman kills, the watcher rescues, and
	// the removal completes.
	t.Run("W2-read-rm-force", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		id, st, conn := e.arm(t, ctx, "read")
		e.waitRecorded(t, id, conn.ID, time.Now().Add(2*time.Second))
		begin := time.Now()
		rctx, rcancel := context.WithTimeout(ctx, e.killTimeout())
		defer rcancel()
		if _, _, err := e.p.Podman(rctx, "rm", "--force", "--time", "0", id); err != nil {
			t.Fatalf("podman rm -f after %v: %v\nwatch.log:\n%s", time.Since(begin), err, readFile(filepath.Join(e.stateDir, watch.LogName)))
		}
		took := time.Since(begin)
		t.Logf("podman rm -f of the wedged container took %v", took.Round(time.Millisecond))
		if took > e.rescueBound() {
			t.Errorf("podman rm -f took %v, want within %v", took, e.rescueBound())
		}
		fgwatch.AssertRescued(t, filepath.Join(e.stateDir, watch.LogName), id, conn.ID)
		e.waitNoRecord(t, id, time.Now().Add(poststopBound))
		e.assertGone(t, id, st)
	})
}

// TestPodmanHookStartsWatcher runs with no watcher at first: the hook
// starts one (under podman, with the environment conmon gives it), outside
// the container's cgroup; it rescues a `podman kill` at its default grace
// and outlives the container. The container's conmon, its parent, stays
// until the watcher stops, then goes.
func TestPodmanHookStartsWatcher(t *testing.T) {
	testenv.RequireLong(t)
	testenv.RequireFUSE(t)
	e := &env{stateDir: testenv.StateDir(t), grace: watch.DefaultGrace, hookMade: true}
	// Registered first, so it runs after the podman's teardown.
	t.Cleanup(func() { fgwatch.StopWatcher(t, e.stateDir) })
	e.p = podman.Start(t, fgcmd.Binary(t), e.stateDir)
	e.hookStartsWatcher(t)
}

// TestPodmanHooksDAsShipped is TestPodmanHookStartsWatcher with the
// deploy/hooks.d files byte for byte as they ship: /usr/local/bin/fuseguard,
// the default state directory /run/fuseguard, no environment from podman.
// podman runs in a mount namespace of the test's (podman.StartAsShipped),
// so the host's /run/fuseguard is left as it was.
func TestPodmanHooksDAsShipped(t *testing.T) {
	testenv.RequireLong(t)
	testenv.RequireFUSE(t)
	assertHostStateDirKept(t)
	e := &env{grace: watch.DefaultGrace, hookMade: true}
	// The namespace's end kills the watcher a hook started, after the
	// podman's teardown.
	e.p, e.stateDir = podman.StartAsShipped(t, fgcmd.Binary(t))
	e.hookStartsWatcher(t)
}

// assertHostStateDirKept checks, after every other cleanup of t, that the
// host's record.DefaultStateDir holds what it held before t (absent stays
// absent).
func assertHostStateDirKept(t *testing.T) {
	t.Helper()
	entries := func() (names []string, exists bool) {
		des, err := os.ReadDir(record.DefaultStateDir)
		if errors.Is(err, os.ErrNotExist) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			names = append(names, de.Name())
		}
		return names, true
	}
	before, existed := entries()
	t.Cleanup(func() {
		after, exists := entries()
		if exists != existed || !slices.Equal(after, before) {
			t.Errorf("the host's %s changed: %q (exists %v), before the test %q (exists %v)", record.DefaultStateDir, after, exists, before, existed)
		}
	})
}

// hookStartsWatcher is TestPodmanHookStartsWatcher's run on e, whose
// podman has the hooks and no watcher runs on its state directory.
func (e *env) hookStartsWatcher(t *testing.T) {
	t.Helper()
	e.image = e.p.ImportImage(t, "localhost/fgtest/podman:latest", map[string]string{"/fusefixture": fixture.Binary(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	id, st, conn := e.arm(t, ctx, "read")
	wpid, err := watch.Holder(e.stateDir)
	if err != nil || wpid <= 0 {
		t.Fatalf("no watcher holds %s after the hooks ran: %d %v\nhook.log:\n%s", e.stateDir, wpid, err, readFile(filepath.Join(e.stateDir, "hook.log")))
	}
	if !strings.Contains(readFile(filepath.Join(e.stateDir, "hook.log")), `"msg":"started the node watcher"`) {
		t.Fatalf("hook.log does not say a hook started the watcher:\n%s", readFile(filepath.Join(e.stateDir, "hook.log")))
	}
	e.watcher = wpid
	p := proc.NewFS("")
	wcg, err1 := p.Cgroup(wpid)
	icg, err2 := p.Cgroup(st.Pid)
	if err1 != nil || err2 != nil || wcg == icg {
		t.Errorf("watcher cgroup %q (%v), container's %q (%v): want apart", wcg, err1, icg, err2)
	}
	e.killArmed(t, ctx, id, st, conn)
	if h, err := watch.Holder(e.stateDir); err != nil || h != wpid {
		t.Fatalf("after the container was removed, the lock is held by %d (%v), want the hook's watcher %d", h, err, wpid)
	}
	// The hook's orphan went to the nearest subreaper, the container's
	// conmon, which waits for it: it stays until the watcher ends, then
	// goes too.
	if w, err := p.Stat(context.Background(), wpid); err != nil || w.PPID != st.ConmonPid {
		t.Errorf("watcher %d: parent %d (%v), want the container's conmon %d", wpid, w.PPID, err, st.ConmonPid)
	}
	fgwatch.StopWatcher(t, e.stateDir)
	deadline := time.Now().Add(goneBound)
	for {
		left := e.p.Leftovers()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of this podman left %v after the watcher stopped: %v", goneBound, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killRescued arms a self-wedging container (see arm), kills it with
// `podman kill`, and asserts that init waits
// in zap_pid_ns_processes until the watcher aborts exactly that
// connection, that the container is then exited 137 within rescueBound,
// that `podman rm -f` works within rmBound and leaves nothing behind.
func (e *env) killRescued(t *testing.T, ctx context.Context, mode string) {
	t.Helper()
	id, st, conn := e.arm(t, ctx, mode)
	e.killArmed(t, ctx, id, st, conn)
}

// killArmed is killRescued for a container arm started.
func (e *env) killArmed(t *testing.T, ctx context.Context, id string, st podman.State, conn fuseconn.ConnRef) {
	t.Helper()
	rec := e.waitRecorded(t, id, conn.ID, time.Now().Add(2*time.Second))
	if c := rec.Connections[slices.IndexFunc(rec.Connections, func(c record.RecordedConnection) bool { return c.Conn == conn.ID })]; !c.Owned {
		t.Fatalf("the container's own connection recorded as not owned: %+v", c)
	}
	if h, err := watch.Holder(e.stateDir); err != nil || h != e.watcher {
		t.Fatalf("watch lock held by %d (%v), want the watcher %d", h, err, e.watcher)
	}

	begin := time.Now()
	type result struct {
		stderr string
		err    error
	}
	killed := make(chan result, 1)
	go func() {
		kctx, cancel := context.WithTimeout(ctx, e.killTimeout())
		defer cancel()
		_, stderr, err := e.p.Podman(kctx, "kill", id)
		killed <- result{stderr, err}
	}()
	assertWedged(t, st.Pid, begin, e.grace*3/4)
	r := <-killed
	if r.err != nil {
		t.Fatalf("podman kill after %v: %v\nwatch.log:\n%s", time.Since(begin), r.err, readFile(filepath.Join(e.stateDir, watch.LogName)))
	}
	rescueBound := e.rescueBound()
	wctx, cancel := context.WithDeadline(ctx, begin.Add(rescueBound))
	defer cancel()
	exited, err := e.p.WaitStatus(wctx, id, "exited")
	if err != nil {
		t.Fatalf("not exited within %v of podman kill: %v\nwatch.log:\n%s", rescueBound, err, readFile(filepath.Join(e.stateDir, watch.LogName)))
	}
	took := exited.FinishedAt.Sub(begin)
	t.Logf("podman kill returned after %v; exited %v after it (podman's FinishedAt)", time.Since(begin).Round(time.Millisecond), took.Round(time.Millisecond))
	if took < e.grace || took > rescueBound {
		t.Errorf("FinishedAt %v after podman kill, want after the %v grace (the wedge held until the rescue) and within %v", took, e.grace, rescueBound)
	}
	if exited.ExitCode != 137 {
		t.Errorf("exit code %d, want 137 (SIGKILL)", exited.ExitCode)
	}
	fgwatch.AssertRescued(t, filepath.Join(e.stateDir, watch.LogName), id, conn.ID)
	e.waitNoRecord(t, id, time.Now().Add(poststopBound))
	e.assertHooksRan(t, id, "createRuntime", "poststart")

	rmBegin := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, rmBound)
	defer rcancel()
	if _, _, err := e.p.Podman(rctx, "rm", "--force", id); err != nil {
		t.Fatalf("podman rm -f after %v: %v", time.Since(rmBegin), err)
	}
	t.Logf("podman rm -f took %v", time.Since(rmBegin).Round(time.Millisecond))
	e.assertGone(t, id, st)
	if _, err := fuseconn.NewControl("").WaitingInstance(conn); !errors.Is(err, fuseconn.ErrNoSuchConnection) && !errors.Is(err, fuseconn.ErrConnectionReplaced) {
		t.Errorf("connection %s still there after the rescue (%v)", conn, err)
	}
}

// arm starts a container whose FUSE daemon wedges itself (one of its
// threads reads its own mount, mode read or lookup, and the daemon never
// answers) and returns it once armed, its connection owned by the test.
func (e *env) arm(t *testing.T, ctx context.Context, mode string) (string, podman.State, fuseconn.ConnRef) {
	t.Helper()
	// "; true" keeps sh as init, so init waits in zap_pid_ns_processes.
	id, err := e.p.RunDetached(ctx, e.image, podman.FUSERunArgs(), "sh", "-c", "/fusefixture serve -mode "+mode+" -mount /mnt -self-read; true")
	if err != nil {
		t.Fatal(err)
	}
	logs, err := e.p.WaitLog(ctx, id, "fusefixture: ready role=serve")
	if err != nil {
		t.Fatalf("%v\n--- container log ---\n%s", err, logs)
	}
	st, err := e.p.Inspect(ctx, id)
	if err != nil || !st.Running {
		t.Fatalf("armed container: %+v %v", st, err)
	}
	return id, st, e.p.OwnConn(t, fixture.ConnFromOutput(t, logs), st.Pid)
}

// assertWedged checks, within window after since (the kill), the W2
// shape: init waits in zap_pid_ns_processes while a task of its FUSE
// daemon is in D.
func assertWedged(t *testing.T, pid int, since time.Time, window time.Duration) {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		zap, stuck := fixture.WedgeShape(ctx, pid)
		cancel()
		if zap && len(stuck) > 0 {
			return
		}
		if time.Since(since) >= window {
			t.Fatalf("init %d after podman kill: in zap_pid_ns_processes %v, tasks in D %v: not the W2 wedge", pid, zap, stuck)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPodmanBaseline shows what fuseguard fixes: with podman alone (no
// hooks, no watcher) `podman kill` of a container wedged in FUSE fails,
// and so does `podman rm -f`; init stays in zap_pid_ns_processes through
// both. The test's cleanup aborts the connection.
func TestPodmanBaseline(t *testing.T) {
	testenv.RequireLong(t)
	testenv.RequireFUSE(t)
	e := &env{p: podman.Start(t, "", "")}
	e.image = e.p.ImportImage(t, "localhost/fgtest/podman:latest", map[string]string{"/fusefixture": fixture.Binary(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, st, _ := e.arm(t, ctx, "read")

	begin := time.Now()
	kctx, kcancel := context.WithTimeout(ctx, e.killTimeout())
	defer kcancel()
	_, _, err := e.p.Podman(kctx, "kill", id)
	if err == nil {
		t.Fatalf("podman kill of a wedged container succeeded after %v without fuseguard", time.Since(begin))
	}
	t.Logf("podman kill failed after %v: %v", time.Since(begin).Round(time.Millisecond), err)
	after, ierr := e.p.Inspect(ctx, id)
	t.Logf("podman then reports %+v (%v)", after, ierr)
	assertWedged(t, st.Pid, time.Now(), time.Second)

	rmBegin := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, removeTimeout)
	defer rcancel()
	if _, _, err := e.p.Podman(rctx, "rm", "--force", id); err == nil {
		t.Fatalf("podman rm -f of a wedged container succeeded after %v without fuseguard", time.Since(rmBegin))
	} else {
		t.Logf("podman rm -f failed after %v: %v", time.Since(rmBegin).Round(time.Millisecond), err)
	}
	assertWedged(t, st.Pid, time.Now(), time.Second)
}

// assertHooksRan checks hook.log: each stage's hook finished for id, and
// none started a watcher (the test's runs).
func (e *env) assertHooksRan(t *testing.T, id string, stages ...string) {
	t.Helper()
	path := filepath.Join(e.stateDir, "hook.log")
	for _, s := range stages {
		if !e.hookDone(id, s) {
			t.Errorf("hook.log: no %s hook done for %.12s:\n%s", s, id, readFile(path))
		}
	}
	if !e.hookMade && strings.Contains(readFile(path), "started the node watcher") {
		t.Errorf("a hook started a watcher although the test's held the lock:\n%s", readFile(path))
	}
}

// hookDone reports whether hook.log says stage's hook finished for id.
func (e *env) hookDone(id, stage string) bool {
	return slices.ContainsFunc(fgcmd.LogLines(filepath.Join(e.stateDir, "hook.log"), id), func(l string) bool {
		return strings.Contains(l, `"msg":"hook done"`) && strings.Contains(l, `"stage":"`+stage+`"`)
	})
}

// waitRecorded polls id's record until it holds conn, failing t after
// deadline.
func (e *env) waitRecorded(t *testing.T, id string, conn fuseconn.ConnID, deadline time.Time) *record.Record {
	t.Helper()
	for {
		rec, err := record.Store{Dir: e.stateDir}.Load(id)
		if err == nil && slices.ContainsFunc(rec.Connections, func(c record.RecordedConnection) bool { return c.Conn == conn }) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %s not in the record of %.12s in time: %+v %v\nwatch.log:\n%s", conn, id, rec, err, readFile(filepath.Join(e.stateDir, watch.LogName)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitNoRecord polls until the record of id is gone and the poststop hook
// has run for id (podman runs it itself, with an empty environment, when
// it cleans up the exited container; the watcher also drops the record of
// an init that exited).
func (e *env) waitNoRecord(t *testing.T, id string, deadline time.Time) {
	t.Helper()
	store := record.Store{Dir: e.stateDir}
	for {
		_, err := store.Load(id)
		if errors.Is(err, record.ErrNoRecord) && e.hookDone(id, "poststop") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("record of %.12s still there (%v)\nhook.log:\n%s", id, err, readFile(filepath.Join(e.stateDir, "hook.log")))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertGone checks that nothing of a removed container is left: its init
// and conmon are gone, no process of this podman remains, nothing is
// mounted below its directory, runc keeps no state and podman lists no
// container (the subtests run one container at a time).
//
// A watcher a hook started is a child of the first container's conmon (a
// subreaper), which stays until the watcher ends: those two may remain.
func (e *env) assertGone(t *testing.T, id string, st podman.State) {
	t.Helper()
	p := proc.NewFS("")
	keep := map[int]bool{}
	if e.hookMade {
		keep[e.watcher] = true
		if w, err := p.Stat(context.Background(), e.watcher); err == nil {
			keep[w.PPID] = true
		}
	}
	// conmon may still be on its way out when podman rm returns.
	deadline := time.Now().Add(goneBound)
	for {
		var alive []string
		for _, pid := range []int{st.Pid, st.ConmonPid} {
			if s, err := p.Stat(context.Background(), pid); err == nil && s.State != "Z" && !keep[pid] {
				alive = append(alive, fmt.Sprintf("%d (%s)", pid, s.Comm))
			}
		}
		left := slices.DeleteFunc(e.p.Leftovers(), func(pid int) bool { return keep[pid] })
		if len(alive) == 0 && len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%v after the removal: processes of the container %v, of this podman %v", goneBound, alive, left)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if mounts, err := e.p.Mounts(); err != nil || len(mounts) > 0 {
		t.Errorf("mounts left below %s: %v %v", e.p.Dir, mounts, err)
	}
	if podman.HasRuntimeState(id) {
		t.Errorf("runc still keeps state of %.12s", id)
	}
	if out, _, err := e.p.Podman(context.Background(), "ps", "--all", "--quiet", "--no-trunc"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("podman still lists %q (%v)", out, err)
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
