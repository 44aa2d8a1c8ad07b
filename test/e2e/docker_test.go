package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
	"github.com/fuseguard/fuseguard/test/wedgefs"
)

// dockerKillWindow is Docker 20.10's own wait after a SIGKILL (10 s for
// the exit event, then 2 s more) before it reports a failed kill.
const dockerKillWindow = 12 * time.Second

// Docker 20.10's answers to a kill whose container does not die.
const (
	exitEventErr = "tried to kill container, but did not receive an exit event"
	zombieErr    = "is zombie and can not be killed"
)

// dockerEnv is one private dockerd with the fuseguard runtime registered,
// shared by every subtest of a test.
type dockerEnv struct {
	d        *dockerd.Daemon
	image    string
	stateDir string
	traceDir string // strace logs of the traced runtimes, if any
}

// startDocker starts a dockerd whose daemon.json registers the wrapper as
// runtime "fuseguard" (hooks without the node watcher: TestMain's
// FUSEGUARD_WATCHER=0 reaches them through dockerd's environment).
func startDocker(t testing.TB) *dockerEnv {
	t.Helper()
	e := &dockerEnv{stateDir: testenv.StateDir(t)}
	e.d, e.image = startDaemon(t, map[string]string{"fuseguard": fgcmd.RuntimeScript(t, e.stateDir)})
	return e
}

// startDaemon starts a dockerd with runtimes registered in its daemon.json
// and imports the test image (busybox-static and /fusefixture).
func startDaemon(t testing.TB, runtimes map[string]string) (*dockerd.Daemon, string) {
	t.Helper()
	return startDaemonOpts(t, runtimes, nil)
}

// startDaemonOpts is startDaemon with env added to dockerd's environment,
// which its containerd, shims, runtimes and hooks inherit.
func startDaemonOpts(t testing.TB, runtimes map[string]string, env []string) (*dockerd.Daemon, string) {
	t.Helper()
	testenv.RequireFUSE(t)
	fix := fixture.Binary(t)
	d := dockerd.Start(t, dockerd.Options{Runtimes: runtimes, ExtraEnv: env})
	return d, d.ImportImage(t, "fgtest/e2e:latest", map[string]string{"/fusefixture": fix})
}

// armed is a running container whose FUSE daemon is ready.
type armed struct {
	id   string
	conn uint32
	pid  int
}

// start runs cmd under runtime and waits for the fixture's ready event
// (role serve or hold); the connection is aborted at cleanup whatever
// happens.
func (e *dockerEnv) start(t *testing.T, ctx context.Context, runtime, role string, extra []string, cmd ...string) armed {
	t.Helper()
	id, err := e.d.RunDetached(ctx, e.image, runtime, append(dockerd.FUSERunArgs(), extra...), cmd...)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := e.d.WaitLog(ctx, id, "fusefixture: ready role="+role)
	if err != nil {
		t.Fatalf("%v\n--- container log ---\n%s", err, logs)
	}
	a := armed{id: id, conn: uint32(fixture.ConnFromOutput(t, logs))}
	e.d.OnCleanup(func() { _ = e.d.AbortFUSE(a.conn) })
	st, err := e.d.Inspect(ctx, id)
	if err != nil || !st.Running {
		t.Fatalf("armed container: %+v, %v", st, err)
	}
	a.pid = st.Pid
	return a
}

// waitNoRecord polls until the record of id is gone (the wrapper removes
// it when the shim deletes the task, shortly after the exit).
func (e *dockerEnv) waitNoRecord(t *testing.T, id string) {
	t.Helper()
	store := record.Store{Dir: e.stateDir}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := store.Load(id)
		if errors.Is(err, record.ErrNoRecord) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("record of %.12s still there (%v)\nhook.log:\n%s", id, err, strings.Join(fgcmd.LogLines(filepath.Join(e.stateDir, "hook.log"), id), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func w2Cmd(mode string) []string {
	// "; true" keeps sh as init, so init waits in zap_pid_ns_processes in S.
	return []string{"sh", "-c", "/fusefixture serve -mode " + mode + " -mount /mnt -self-read; true"}
}

// TestDocker runs the Docker scenarios against one daemon: W4 and W2
// (read, lookup) through the fuseguard runtime, W2 through plain runc as
// the baseline that shows the bug, and W5.
func TestDocker(t *testing.T) {
	testenv.RequireLong(t)
	e := startDocker(t)

	t.Run("W4", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := e.start(t, ctx, "fuseguard", "hold", nil,
			"/fusefixture", "serve", "-mode", "healthy", "-mount", "/mnt", "--", "/fusefixture", "hold", "/mnt/"+wedgefs.DataFile)
		rec, err := record.Store{Dir: e.stateDir}.Load(a.id)
		if err != nil {
			t.Fatalf("no record of a running container: %v", err)
		}
		if rec.InitPID != a.pid || rec.InitStartTime == 0 {
			t.Fatalf("record init %d (start %d), docker says %d", rec.InitPID, rec.InitStartTime, a.pid)
		}
		if err := e.d.Kill(ctx, a.id); err != nil {
			t.Fatalf("docker kill of a healthy container: %v", err)
		}
		st, err := e.d.WaitExited(ctx, a.id)
		if err != nil || st.Status != "exited" || st.ExitCode != 137 {
			t.Fatalf("after docker kill: %+v %v, want exited 137", st, err)
		}
		if err := e.d.Rm(ctx, a.id, false); err != nil {
			t.Fatal(err)
		}
		e.waitNoRecord(t, a.id)
		lines := fgcmd.LogLines(filepath.Join(e.stateDir, "runtime.log"), a.id)
		// Init is often gone before runc kill returns: already-gone.
		if !slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, `"command":"kill"`) &&
				(strings.Contains(l, `"outcome":"exited"`) || strings.Contains(l, `"outcome":"already-gone"`))
		}) {
			t.Errorf("runtime.log: no exited or already-gone outcome for the healthy kill:\n%s", strings.Join(lines, "\n"))
		}
	})

	for _, mode := range []string{"read", "lookup"} {
		t.Run("W2-"+mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a := e.start(t, ctx, "fuseguard", "serve", nil, w2Cmd(mode)...)
			took := e.killRescued(t, ctx, a)
			t.Logf("docker kill of W2-%s through fuseguard: %v", mode, took.Round(time.Millisecond))
		})
	}

	// W6 under Docker: the daemon (holding a file on its own mount, so that
	// its death does not close the connection) starts a task that execs
	// with a FUSE file open close-on-exec, and the exec sleeps in the flush
	// holding its exec lock: its stack and stat cannot be read. docker kill
	// through the wrapper still returns within its bound and rescues, the
	// runtime log names the task it could not read, no process of the
	// container is left, and the next, unrelated wedged container is still
	// rescued through docker kill.
	t.Run("W6-exec-flush", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// Not serve's own child: serve holds its file from before the fork,
		// so its child's exec would be the one to flush it.
		a := e.start(t, ctx, "fuseguard", "serve", nil, "sh", "-c",
			"/fusefixture serve -mode flush -mount /mnt -hold -ready /tmp/ready & "+
				"while [ ! -s /tmp/ready ]; do sleep 0.05; done; /fusefixture exec-hold /mnt/"+wedgefs.DataFile+"; true")
		if logs, err := e.d.WaitLog(ctx, a.id, "fusefixture: blocked op=FLUSH"); err != nil {
			t.Fatalf("exec-hold not armed: %v\n%s", err, logs)
		}
		tree := dockerd.HoldTree(t, a.pid)
		execTask, blocks := inExecve(t, tree, a.pid)
		took := e.killRescued(t, ctx, a)
		t.Logf("docker kill of W6 through fuseguard: %v", took.Round(time.Millisecond))
		// The wrapper's rescue is killer.Kill with the default options; the
		// runtime's start and runc's kill are small beside BoundSlack.
		if bound := (killer.Options{}).Bound(); took > bound {
			t.Errorf("docker kill of W6 returned after %v, bound %v", took, bound)
		}
		lines := fgcmd.LogLines(filepath.Join(e.stateDir, "runtime.log"), a.id)
		switch named := namesUnreadable(t, lines, execTask); {
		case blocks && !named:
			t.Errorf("runtime.log does not name task %d, whose stack cannot be read, as unreadable:\n%s", execTask, strings.Join(lines, "\n"))
		case !blocks && named:
			t.Errorf("runtime.log names task %d unreadable, but this kernel answers reads of it:\n%s", execTask, strings.Join(lines, "\n"))
		}
		if alive := tree.Alive(); len(alive) > 0 {
			t.Errorf("processes %v of the container (held %v) alive after the kill", alive, tree.PIDs)
		}

		next := e.start(t, ctx, "fuseguard", "serve", nil, w2Cmd("read")...)
		nextTree := dockerd.HoldTree(t, next.pid)
		took = e.killRescued(t, ctx, next)
		t.Logf("docker kill of the next wedged container (W2) after W6: %v", took.Round(time.Millisecond))
		if alive := nextTree.Alive(); len(alive) > 0 {
			t.Errorf("processes %v of the next container alive after its kill", alive)
		}
	})

	t.Run("baseline-runc-W2", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := e.start(t, ctx, "runc", "serve", nil, w2Cmd("read")...)
		begin := time.Now()
		err := e.d.Kill(ctx, a.id)
		t.Logf("docker kill of W2 under runc: %v after %v", err, time.Since(begin).Round(time.Millisecond))
		if err == nil {
			t.Fatal("docker kill of W2 succeeded under plain runc: the baseline no longer shows the bug")
		}
		if !strings.Contains(err.Error(), exitEventErr) && !strings.Contains(err.Error(), zombieErr) {
			t.Fatalf("docker kill failed, but not with Docker's kill timeout: %v", err)
		}
		if st, err := e.d.Inspect(ctx, a.id); err != nil || !st.Running {
			t.Fatalf("after the failed kill: %+v %v, want still running", st, err)
		}
		if err := e.d.AbortFUSE(a.conn); err != nil {
			t.Fatal(err)
		}
		if st, err := e.d.WaitExited(ctx, a.id); err != nil || st.ExitCode != 137 {
			t.Fatalf("after the abort: %+v %v, want exited 137", st, err)
		}
		if err := e.d.Rm(ctx, a.id, false); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("W5", func(t *testing.T) {
		host := fixture.HostMount(t, "lxcfs")
		hostConn := uint32(host.Conn)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := e.start(t, ctx, "fuseguard", "serve", []string{"-v", host.Dir + ":/shared"}, w2Cmd("read")...)
		if conns, err := dockerd.FUSEConns(a.pid); err != nil || !slices.Contains(conns, hostConn) {
			t.Fatalf("FUSEConns(init %d) = %v (%v), want the host's %d bind-mounted in", a.pid, conns, err, hostConn)
		}
		e.killRescued(t, ctx, a)
		assertHostServes(t, host)
	})
}

// assertHostServes asserts that a rescue left the host's shared mount
// alone: its connection still exists and the mount still answers (read from
// a child, with a deadline, never from here).
func assertHostServes(t *testing.T, host *fixture.Host) {
	t.Helper()
	if !connExists(uint32(host.Conn)) {
		t.Fatalf("the host's shared connection %d was aborted", host.Conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := host.Answers(ctx); err != nil {
		t.Fatalf("host FUSE mount after the rescue: %v", err)
	}
}

// killRescued asserts that `docker kill` of a wedged container succeeds
// inside Docker's window, the container exited 137, `docker rm` works and
// the record is gone; it returns how long the kill took.
func (e *dockerEnv) killRescued(t *testing.T, ctx context.Context, a armed) time.Duration {
	t.Helper()
	begin := time.Now()
	err := e.d.Kill(ctx, a.id)
	took := time.Since(begin)
	if err != nil {
		t.Fatalf("docker kill through fuseguard failed after %v: %v\nruntime.log:\n%s", took, err,
			strings.Join(fgcmd.LogLines(filepath.Join(e.stateDir, "runtime.log"), a.id), "\n"))
	}
	st, err := e.d.WaitExited(ctx, a.id)
	exited := time.Since(begin)
	if err != nil || st.Status != "exited" || st.ExitCode != 137 {
		t.Fatalf("after docker kill: %+v %v, want exited 137", st, err)
	}
	if exited >= dockerKillWindow {
		t.Fatalf("exited %v after the kill, not inside Docker's %v window", exited, dockerKillWindow)
	}
	lines := fgcmd.LogLines(filepath.Join(e.stateDir, "runtime.log"), a.id)
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, `"outcome":"recovered"`) }) {
		t.Errorf("runtime.log: no recovered outcome for %.12s:\n%s", a.id, strings.Join(lines, "\n"))
	}
	if err := e.d.Rm(ctx, a.id, false); err != nil {
		t.Fatal(err)
	}
	e.waitNoRecord(t, a.id)
	return took
}

// inExecve returns the held process asleep in the exec-hold wedge (its
// exec flushes a FUSE file whose FLUSH is never answered), found by the
// kernel's own answer: reads of its stack block behind its exec lock
// (Linux 5.10, 6.18; blocks is true) or show it inside execve (6.1, 6.12:
// see fixture.InExecFlush). Exactly one held process but init must be so.
// A probing read that blocks is abandoned and returns after the rescue.
func inExecve(t *testing.T, tree *dockerd.Tree, init int) (tid int, blocks bool) {
	t.Helper()
	p := proc.NewFS("")
	var found []int
	for _, pid := range tree.PIDs {
		if pid == init {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		st, err := p.Stack(ctx, pid)
		cancel()
		switch {
		case errors.Is(err, proc.ErrReadTimeout):
			found, blocks = append(found, pid), true
		case err == nil && fixture.InExecFlush(st):
			t.Logf("this kernel answers reads of a task inside execve: %s", st)
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("processes inside execve (stack unreadable or in a FUSE flush inside execve): %v of %v; want one", found, tree.PIDs)
	}
	return found[0], blocks
}

// namesUnreadable reports whether a line of the wrapper's runtime.log names
// task tid unreadable (field "unreadable", killer's
// Diagnosis.UnreadableTasks) for a read that did not return in time.
func namesUnreadable(t *testing.T, lines []string, tid int) bool {
	t.Helper()
	want := fmt.Sprintf("task %d (", tid)
	for _, l := range lines {
		var entry struct {
			Unreadable []string `json:"unreadable"`
		}
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Fatalf("runtime.log line %q: %v", l, err)
		}
		if slices.ContainsFunc(entry.Unreadable, func(u string) bool {
			return strings.HasPrefix(u, want) && strings.Contains(u, proc.ErrReadTimeout.Error())
		}) {
			return true
		}
	}
	return false
}
