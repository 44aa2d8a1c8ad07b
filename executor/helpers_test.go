package executor_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/executor"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// env is the one dockerd a test binary shares, its image with the
// fusefixture binary, and a record store standing in for the hook's.
type env struct {
	d     *dockerd.Daemon
	image string
	store record.Store
}

// armTimeout bounds starting a container and waiting for it to be armed.
const armTimeout = time.Minute

func newEnv(t testing.TB) *env {
	t.Helper()
	testenv.RequireFUSE(t)
	bin := fixture.Binary(t)
	d := dockerd.Start(t, dockerd.Options{DefaultRuntime: "runc"})
	// Whatever a test leaves frozen, the teardown needs dockerd thawed.
	d.OnCleanup(func() { _ = unix.Kill(d.Pid, unix.SIGCONT) })
	image := d.ImportImage(t, "fgtest/executor:latest", map[string]string{"/fusefixture": bin})
	return &env{d: d, image: image, store: record.NewStore(testenv.StateDir(t))}
}

// container is one started container, armed.
type container struct {
	id   string // full id
	init int    // init's host pid
	conn uint32 // its FUSE connection
}

// W4: a healthy FUSE daemon under the fixture's init, no file held open.
func (e *env) w4(t testing.TB) container {
	return e.run(t, "/fusefixture", "init", "--", "/fusefixture", "serve", "-mode", "healthy", "-mount", "/mnt")
}

// W2: the daemon's own thread reads its mount and never gets an answer
// (the seed's self-deadlock); killing init wedges the container.
func (e *env) w2(t testing.TB) container {
	return e.run(t, "/fusefixture", "init", "--", "/fusefixture", "serve", "-mode", "read", "-mount", "/mnt", "-self-read")
}

func (e *env) run(t testing.TB, cmd ...string) container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), armTimeout)
	defer cancel()
	id, err := e.d.RunDetached(ctx, e.image, "runc", dockerd.FUSERunArgs(), cmd...)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := e.d.WaitLog(ctx, id, "fusefixture: ready role=serve")
	connID, mounted := fixture.MountedConn(logs)
	conn := uint32(connID)
	if mounted {
		// Registered before anything else can fail: a wedge never
		// outlives its test, and the daemon's teardown aborts it again.
		t.Cleanup(func() { e.abort(t, conn) })
		e.d.OnCleanup(func() { _ = e.d.AbortFUSE(conn) })
	}
	if err != nil {
		t.Fatalf("%v\n--- container log ---\n%s", err, logs)
	}
	if !mounted {
		t.Fatalf("no mounted event in the log of %.12s:\n%s", id, logs)
	}
	st, err := e.d.Inspect(ctx, id)
	if err != nil || !st.Running {
		t.Fatalf("armed container %.12s: %+v, %v", id, st, err)
	}
	return container{id: id, init: st.Pid, conn: conn}
}

// abort aborts conn if it is still one of this daemon's containers'.
func (e *env) abort(t testing.TB, conn uint32) {
	if err := e.d.AbortFUSE(conn); err != nil {
		t.Errorf("abort FUSE connection %d: %v", conn, err)
	}
}

// record saves what the fuseguard hook would have saved while c ran.
func (e *env) record(t testing.TB, c container) *record.Record {
	t.Helper()
	rec, err := record.NewRecord(proc.NewFS(""), c.id, c.init, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Save(rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.Remove(c.id) })
	return rec
}

// killer is an executor.Killer on a client of its own (closed at cleanup),
// logging into the test's log.
func (e *env) killer(t testing.TB) (*executor.Killer, func()) {
	t.Helper()
	cli, err := executor.NewDockerClient(e.d.Host())
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(testWriter{t})
	log.SetLevel(logrus.DebugLevel)
	k := &executor.Killer{Docker: cli, Store: e.store, Log: log}
	closeCli := func() { cli.Close() }
	t.Cleanup(closeCli)
	return k, closeCli
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// freeze stops dockerd with SIGSTOP and returns its thaw, which is also
// registered as a cleanup: dockerd is never left frozen.
func freeze(t testing.TB, d *dockerd.Daemon) (thaw func()) {
	t.Helper()
	thaw = func() {
		if err := unix.Kill(d.Pid, unix.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("SIGCONT dockerd: %v", err)
		}
	}
	t.Cleanup(thaw)
	if err := unix.Kill(d.Pid, unix.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP dockerd: %v", err)
	}
	// SIGSTOP is asynchronous: wait until every thread is stopped.
	deadline := time.Now().Add(5 * time.Second)
	for !stopped(d.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("dockerd %d not stopped 5s after SIGSTOP", d.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return thaw
}

// stopped reports whether every thread of pid is in state T.
func stopped(pid int) bool {
	fs := proc.NewFS("")
	tids, err := fs.Tasks(pid)
	if err != nil || len(tids) == 0 {
		return false
	}
	for _, tid := range tids {
		if st, err := fs.Stat(context.Background(), tid); err != nil || st.State != "T" {
			return false
		}
	}
	return true
}
