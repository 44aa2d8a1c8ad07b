package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fgwatch"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestDockerKillLeavesReusedConnection is the id-reuse break through
// `docker kill` and the runtime wrapper: the container's record names its
// own connection N; the container unmounts it; a host mount is handed N
// and a host reader waits on it; the container, wedged on another mount,
// is killed. The wedge must be rescued and the host's N left serving, its
// reader still waiting.
func TestDockerKillLeavesReusedConnection(t *testing.T) {
	testenv.RequireLong(t)
	e := startDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := e.start(t, ctx, "fuseguard", "serve", nil, "sh", "-c",
		reuseScript+"; true")
	own := e.ownMount(t, ctx, a)
	ctl := fuseconn.NewControl("")
	ownGen, err := ctl.Generation(own)
	if err != nil {
		t.Fatal(err)
	}

	// What the node watcher does when the container mounts: refresh the
	// record with the connections and their generations. (The e2e hooks
	// run without the watcher.)
	store := record.Store{Dir: e.stateDir}
	rec, err := store.Load(a.id)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := ctl.Observe(proc.NewFS(""), a.pid)
	if err != nil {
		t.Fatal(err)
	}
	rec.Merge(conns, time.Now())
	if err := store.Save(rec); err != nil {
		t.Fatal(err)
	}
	if rc, ok := rec.Lookup(own); !ok || rc.Gen != ownGen || !rc.Owned {
		t.Fatalf("record lacks the container's own connection %d (generation %d): %+v", own, ownGen, rec.Connections)
	}

	// The container unmounts its own fs: its daemon unmounts at SIGTERM.
	fixture.UnmountInside(t, a.pid, "/own", fuseconn.ConnRef{ID: own, Gen: ownGen})
	reused := fixture.HostReuse(t, own, ownGen)

	e.killRescued(t, ctx, a)
	lines := fgcmd.LogLines(filepath.Join(e.stateDir, "runtime.log"), a.id)
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "replaced since it was recorded") }) {
		t.Errorf("runtime.log does not refuse connection %d as replaced:\n%s", reused.Conn, strings.Join(lines, "\n"))
	}
	if err := reused.Intact(ctx); err != nil {
		t.Fatalf("the host's connection %d after docker kill: %v\nruntime.log:\n%s", reused.Conn, err,
			strings.Join(fgcmd.LogLines(filepath.Join(e.stateDir, "runtime.log"), a.id), "\n"))
	}
}

// TestDockerWatcherLeavesReusedConnection is the id-reuse break through the
// node watcher the hooks start: the watcher records the container's own
// connection N (with its generation) when the container mounts it; the
// container unmounts it; a host mount is handed N and a host reader waits
// on it; then init (sh) exits on its own while the container's daemon is
// wedged on its other mount. The watcher's rescue must abort only that
// mount and leave the host's N serving, its reader still waiting.
func TestDockerWatcherLeavesReusedConnection(t *testing.T) {
	testenv.RequireLong(t)
	dir := testenv.StateDir(t)
	// Unset TestMain's FUSEGUARD_WATCHER=0: the hooks start the watcher.
	d, image := startDaemon(t, map[string]string{"fg-reuse": fgcmd.RuntimeScript(t, dir, "-u", "FUSEGUARD_WATCHER")})
	e := &dockerEnv{d: d, image: image, stateDir: dir}
	t.Cleanup(func() { fgwatch.StopWatcher(t, dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// sh is init; it exits once the test creates /go.
	a := e.start(t, ctx, "fg-reuse", "serve", nil, "sh", "-c",
		reuseScript+" & while [ ! -e /go ]; do sleep 0.05; done; exit 0")
	own := e.ownMount(t, ctx, a)
	ownGen, err := fuseconn.NewControl("").Generation(own)
	if err != nil {
		t.Fatal(err)
	}
	// The watcher records the mount, with its generation.
	store := record.Store{Dir: dir}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rec, err := store.Load(a.id)
		if rc, ok := rec.Lookup(own); err == nil && ok && rc.Gen == ownGen && rc.Owned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher did not record connection %d (generation %d): %+v, %v", own, ownGen, rec, err)
		}
	}
	fixture.UnmountInside(t, a.pid, "/own", fuseconn.ConnRef{ID: own, Gen: ownGen})
	reused := fixture.HostReuse(t, own, ownGen)

	if err := os.WriteFile(filepath.Join("/proc", strconv.Itoa(a.pid), "root", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	exit := waitExiting(t, a.pid, 10*time.Second)
	e.assertRescued(t, ctx, a, exit, watch.LogName)
	if err := reused.Intact(ctx); err != nil {
		t.Fatalf("the host's connection %d after the watcher's rescue: %v\nwatch.log:\n%s", reused.Conn, err,
			strings.Join(fgcmd.LogLines(filepath.Join(dir, watch.LogName), a.id), "\n"))
	}
}

// reuseScript starts the reuse scenario's daemons in the container: one
// wedged on its own mount /mnt, its child serving /own, the mount the
// container will give up.
const reuseScript = "mkdir -p /own; /fusefixture serve -mode read -mount /mnt -name ndrive -self-read -- /fusefixture serve -mode healthy -mount /own -name ownfs"

// ownMount waits until a is wedged on /mnt and has mounted /own, and
// returns the connection of /own.
func (e *dockerEnv) ownMount(t *testing.T, ctx context.Context, a armed) fuseconn.ConnID {
	t.Helper()
	logs, err := e.d.WaitLog(ctx, a.id, "fusefixture: blocked op=READ")
	if err == nil {
		logs, err = e.d.WaitLog(ctx, a.id, "dir=/own ")
	}
	own, ok := fixture.MountedConnAt(logs, "/own")
	if err != nil || !ok {
		t.Fatalf("no wedge and mount of /own (%v):\n%s", err, logs)
	}
	return own
}
