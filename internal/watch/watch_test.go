package watch

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
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

// rescueBound is how long after the exit began init may still be there:
// the grace, then up to 2 s for the check, the diagnosis and the abort.
const rescueBound = DefaultGrace + 2*time.Second + raceSlack

func TestSecondInstanceRefused(t *testing.T) {
	dir := testenv.StateDir(t)
	startWatcher(t, dir, Options{})
	_, err := New(Options{StateDir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second New: %v, want ErrLocked", err)
	}
	if want := "held by pid " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder (%s)", err, want)
	}
	if pid, err := Holder(dir); err != nil || pid != os.Getpid() {
		t.Errorf("Holder = %d, %v; want %d", pid, err, os.Getpid())
	}
}

func TestStaleRecordsRemovedAtStart(t *testing.T) {
	testenv.RequireRoot(t)
	dir := testenv.StateDir(t)
	store := record.Store{Dir: dir}
	// A process that is gone, and one whose pid now names another start.
	dead := exec.Command("sleep", "1000")
	if err := dead.Start(); err != nil {
		t.Fatal(err)
	}
	gone := saveRecord(t, dir, "gone", dead.Process.Pid)
	dead.Process.Kill()
	dead.Wait()
	reused := saveRecord(t, dir, "reused", os.Getpid())
	reused.InitStartTime++
	if err := store.Save(reused); err != nil {
		t.Fatal(err)
	}
	live := saveRecord(t, dir, "live", os.Getpid())
	r := startWatcher(t, dir, Options{})
	for _, id := range []string{gone.ID, reused.ID} {
		r.ev.wait(t, EventStale, id, time.Second)
		if _, err := store.Load(id); !errors.Is(err, record.ErrNoRecord) {
			t.Errorf("record %s still there: %v", id, err)
		}
	}
	r.ev.wait(t, EventTracked, live.ID, time.Second)
	if _, err := store.Load(live.ID); err != nil {
		t.Errorf("live record: %v", err)
	}
	// Removing a record makes the watcher forget it.
	if err := store.Remove(live.ID); err != nil {
		t.Fatal(err)
	}
	r.ev.wait(t, EventForgotten, live.ID, time.Second)
}

// W2 whose main process exits by itself (no kill): busybox sh is init, runs
// the self-deadlocking daemon and exits once it is armed.
func TestRescuesSelfExit(t *testing.T) {
	dir := testenv.StateDir(t)
	r := startWatcher(t, dir, Options{})
	c, rec, conn := startSelfExit(t, dir, "selfexit")
	exitAt := time.Now()
	select {
	case <-c.reaped:
	case <-time.After(rescueBound + time.Second):
		t.Fatalf("init %d not reaped within %s; events %v", c.pid(), rescueBound, r.ev.all())
	}
	took := c.reapAt.Sub(exitAt)
	t.Logf("init reaped %s after its exit began", took.Round(time.Millisecond))
	if took > rescueBound {
		t.Errorf("reaped after %s, want within %s", took, rescueBound)
	}
	ev := r.ev.wait(t, EventRescued, rec.ID, time.Second)
	if got := aborted(ev.Report); !slices.Equal(got, []fuseconn.ConnID{conn}) {
		t.Errorf("aborted %v, want [%d]; report %+v", got, conn, ev.Report)
	}
	r.ev.wait(t, EventForgotten, rec.ID, time.Second)
}

// The watcher is stopped, the container wedges (SIGKILL, as an OOM kill
// would) while none runs, and a new watcher rescues it.
func TestRestartMidIncident(t *testing.T) {
	dir := testenv.StateDir(t)
	c := fixture.W2(t, "read")
	rec := saveRecord(t, dir, "restart", c.InitPID)
	if _, ok := rec.Lookup(c.Conn); !ok {
		t.Fatalf("record misses conn %d: %+v", c.Conn, rec.Connections)
	}
	first := startWatcher(t, dir, Options{})
	first.ev.wait(t, EventTracked, rec.ID, time.Second)
	first.stop(t)

	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Exited():
		t.Fatal("W2 exited without a rescue: the fixture did not wedge")
	case <-time.After(time.Second):
	}
	restart := time.Now()
	second := startWatcher(t, dir, Options{})
	select {
	case <-c.Exited():
	case <-time.After(rescueBound + time.Second):
		t.Fatalf("init not reaped after the restart; events %v", second.ev.all())
	}
	t.Logf("rescued %s after the restart", time.Since(restart).Round(time.Millisecond))
	ev := second.ev.wait(t, EventRescued, rec.ID, time.Second)
	if got := aborted(ev.Report); !slices.Equal(got, []fuseconn.ConnID{c.Conn}) {
		t.Errorf("aborted %v, want [%d]", got, c.Conn)
	}
}

// A mount made 3 s after start is recorded within a second, and is the one
// aborted when the container wedges.
func TestLateMountRecordedAndAborted(t *testing.T) {
	dir := testenv.StateDir(t)
	r := startWatcher(t, dir, Options{})
	c := startShell(t, `busybox sleep 3
"$FF" serve -mode read -mount "$M" -name ndrive -self-read -ready "$D/ready" &
wait`)
	rec := saveRecord(t, dir, "late", c.pid())
	// The host's own FUSE mounts (an lxcfs, another test's) are in the
	// container's copy of the table, as shared: only an owned one is early.
	if slices.ContainsFunc(rec.Connections, func(rc record.RecordedConnection) bool { return rc.Owned }) {
		t.Fatalf("record has connections of its own at creation: %+v", rec.Connections)
	}
	conn := recordedWithin(t, r, c, rec.ID)
	saved, err := record.Store{Dir: dir}.Load(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rc, ok := saved.Lookup(conn); !ok || !rc.Owned {
		t.Fatalf("saved record: conn %d present=%v owned=%v", conn, ok, rc.Owned)
	}
	if _, _, ok := c.out.wait("fusefixture: ready role=serve", 10*time.Second); !ok {
		t.Fatalf("daemon not armed:\n%s", c.out)
	}
	killedAt := time.Now()
	if err := unix.Kill(c.pid(), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.reaped:
	case <-time.After(rescueBound + time.Second):
		t.Fatalf("not rescued; events %v", r.ev.all())
	}
	t.Logf("reaped %s after the kill", c.reapAt.Sub(killedAt).Round(time.Millisecond))
	rev := r.ev.wait(t, EventRescued, rec.ID, time.Second)
	if got := aborted(rev.Report); !slices.Equal(got, []fuseconn.ConnID{conn}) {
		t.Errorf("aborted %v, want [%d]", got, conn)
	}
}

// A slow exit with a healthy FUSE mount is never touched.
func TestSlowHealthyExitUntouched(t *testing.T) {
	t.Run("trap", func(t *testing.T) {
		// init takes 3 s to exit cleanly in a SIGTERM handler.
		dir := testenv.StateDir(t)
		r := startWatcher(t, dir, Options{})
		c := startShell(t, `trap 'busybox sleep 3; exit 0' TERM
"$FF" serve -mode healthy -mount "$M" -ready "$D/ready" &
wait`)
		rec := saveRecord(t, dir, "trap", c.pid())
		conn, _ := c.conn(10 * time.Second)
		r.ev.waitRecorded(t, rec.ID, conn, 2*time.Second)
		termAt := time.Now()
		if err := unix.Kill(c.pid(), unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.reaped:
		case <-time.After(10 * time.Second):
			t.Fatal("init did not exit")
		}
		if took := c.reapAt.Sub(termAt); took < 3*time.Second {
			t.Errorf("exit took %s: the handler did not run", took)
		}
		if c.exitErr != nil {
			t.Errorf("init exit: %v, want a clean exit", c.exitErr)
		}
		r.ev.wait(t, EventForgotten, rec.ID, time.Second)
		assertUntouched(t, r, rec.ID, conn)
	})
	t.Run("zap", func(t *testing.T) {
		// init sits in zap_pid_ns_processes for 3 s, longer than the grace,
		// waiting for a task whose parent outside the namespace reaps it
		// late (a `docker exec` process): a stuck exit with nothing waiting
		// on FUSE, so the rescue plans nothing.
		dir := testenv.StateDir(t)
		r := startWatcher(t, dir, Options{})
		c := startShell(t, `"$FF" serve -mode healthy -mount "$M" -ready "$D/ready" &
wait`)
		rec := saveRecord(t, dir, "zap", c.pid())
		conn, _ := c.conn(10 * time.Second)
		r.ev.waitRecorded(t, rec.ID, conn, 2*time.Second)
		late := execInPIDNS(t, c.pid(), "sleep", "1000")
		if err := unix.Kill(c.pid(), unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		ev := r.ev.wait(t, EventRescued, rec.ID, rescueBound+time.Second)
		if !errors.Is(ev.Err, killer.ErrStillStuck) {
			t.Errorf("rescue: %v, want still stuck (nothing to abort)", ev.Err)
		}
		select {
		case <-c.reaped:
			t.Fatal("init exited while the late task was unreaped: the test does not hold it in zap")
		default:
		}
		late.Wait() // reap the zombie: init finishes
		select {
		case <-c.reaped:
		case <-time.After(5 * time.Second):
			t.Fatal("init did not exit")
		}
		r.ev.wait(t, EventForgotten, rec.ID, time.Second)
		assertUntouched(t, r, rec.ID, conn)
	})
}

func assertUntouched(t *testing.T, r *running, id string, conn fuseconn.ConnID) {
	t.Helper()
	for _, ev := range r.ev.all() {
		if ev.Kind == EventRescued && ev.ID == id && len(ev.Report.Aborted) > 0 {
			t.Errorf("healthy container: rescue aborted %v (conn %d)", aborted(ev.Report), conn)
		}
	}
}

// W5: the shared host mount beside the wedge is never aborted.
func TestSharedNeverAborted(t *testing.T) {
	dir := testenv.StateDir(t)
	c := fixture.W5(t)
	rec := saveRecord(t, dir, "w5", c.InitPID)
	sh, ok := rec.Lookup(c.Shared)
	if !ok || sh.Owned {
		t.Fatalf("record: shared conn %d present=%v owned=%v", c.Shared, ok, sh.Owned)
	}
	r := startWatcher(t, dir, Options{})
	r.ev.wait(t, EventTracked, rec.ID, time.Second)
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Exited():
	case <-time.After(rescueBound + time.Second):
		t.Fatalf("not rescued; events %v", r.ev.all())
	}
	ev := r.ev.wait(t, EventRescued, rec.ID, time.Second)
	got := aborted(ev.Report)
	if slices.Contains(got, c.Shared) || !slices.Contains(got, c.Conn) {
		t.Errorf("aborted %v; want %d and never the shared %d", got, c.Conn, c.Shared)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SharedAnswers(ctx); err != nil {
		t.Errorf("shared mount no longer serves the host: %v", err)
	}
}

func TestStatus(t *testing.T) {
	testenv.RequireFUSE(t)
	dir := testenv.StateDir(t)
	c := fixture.W4(t)
	rec := saveRecord(t, dir, "w4", c.InitPID)
	st := ReadStatus(context.Background(), proc.NewFS(""), record.Store{Dir: dir}, fuseconn.NewControl(""))
	if st.WatcherPID != 0 || len(st.Containers) != 1 {
		t.Fatalf("status: %+v", st)
	}
	got := st.Containers[0]
	if got.ID != rec.ID || got.InitPID != c.InitPID || got.Init != InitRunning {
		t.Errorf("container: %+v", got)
	}
	// The container's mount table is a copy of the host's at its start, so
	// host FUSE mounts of other tests may be there too: as shared ones.
	var found bool
	for _, cs := range got.Connections {
		switch {
		case cs.Conn == c.Conn:
			found = true
			if !cs.Live || cs.Waiting != 0 || !cs.Owned {
				t.Errorf("connection %d: %+v, want owned, live, waiting 0", c.Conn, cs)
			}
		case cs.Owned:
			t.Errorf("connection %+v is owned, but the container has only %d of its own", cs, c.Conn)
		}
	}
	if !found {
		t.Errorf("connections: %+v, want conn %d among them", got.Connections, c.Conn)
	}
	startWatcher(t, dir, Options{})
	if st := ReadStatus(context.Background(), proc.NewFS(""), record.Store{Dir: dir}, fuseconn.NewControl("")); st.WatcherPID != os.Getpid() {
		t.Errorf("watcher pid %d, want %d", st.WatcherPID, os.Getpid())
	}
}

// execInPIDNS starts argv as a child of the test process inside pid's PID
// namespace: once init dies the child stays a zombie until Wait.
func execInPIDNS(t *testing.T, pid int, argv ...string) *exec.Cmd {
	t.Helper()
	type res struct {
		c   *exec.Cmd
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// The thread is left in the namespace: never unlocked, it ends with
		// the goroutine.
		runtime.LockOSThread()
		fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWPID); err != nil {
			ch <- res{err: err}
			return
		}
		c := exec.Command(argv[0], argv[1:]...)
		ch <- res{c: c, err: c.Start()}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("start %v in the PID namespace of %d: %v", argv, pid, r.err)
	}
	t.Cleanup(func() {
		_ = r.c.Process.Kill()
		_ = r.c.Wait()
	})
	return r.c
}

// Spawn starts a detached watcher when none runs, and finds it after.
func TestSpawn(t *testing.T) {
	testenv.RequireRoot(t)
	bin := fgcmd.Binary(t)
	dir := testenv.StateDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, started, err := Spawn(ctx, bin, dir)
	if err != nil || !started || pid <= 0 {
		t.Fatalf("Spawn = %d, %v, %v", pid, started, err)
	}
	t.Cleanup(func() {
		_ = unix.Kill(pid, unix.SIGTERM)
		for i := 0; i < 100; i++ {
			if h, _ := Holder(dir); h == 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = unix.Kill(pid, unix.SIGKILL)
	})
	if h, err := Holder(dir); err != nil || h != pid {
		t.Errorf("Holder = %d, %v; want %d", h, err, pid)
	}
	again, started, err := Spawn(ctx, bin, dir)
	if err != nil || started || again != pid {
		t.Errorf("second Spawn = %d, %v, %v; want %d, false, nil", again, started, err, pid)
	}
}
