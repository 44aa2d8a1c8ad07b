package watch

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// events collects a watcher's events for a test.
type events struct {
	mu      sync.Mutex
	list    []Event
	changed chan struct{}
}

func newEvents() *events { return &events{changed: make(chan struct{})} }

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// wait returns the first event of kind for id ("" any) within d.
func (e *events) wait(t *testing.T, kind EventKind, id string, d time.Duration) Event {
	t.Helper()
	ev, ok := e.waitOK(kind, id, d)
	if !ok {
		t.Fatalf("no %s event for %q within %s; events: %v", kind, id, d, e.all())
	}
	return ev
}

func (e *events) waitOK(kind EventKind, id string, d time.Duration) (Event, bool) {
	return e.waitFor(d, func(ev Event) bool { return ev.Kind == kind && (id == "" || ev.ID == id) })
}

// waitRecorded waits until the watcher has conn in id's record, whether it
// was there when tracking began or a refresh added it: the daemon may
// mount before or after the record is first read.
func (e *events) waitRecorded(t *testing.T, id string, conn fuseconn.ConnID, d time.Duration) {
	t.Helper()
	if _, ok := e.waitFor(d, func(ev Event) bool {
		return ev.ID == id && (ev.Kind == EventTracked || ev.Kind == EventRefreshed) && slices.Contains(ev.Conns, conn)
	}); !ok {
		t.Fatalf("connection %d not in %q's record within %s; events: %v", conn, id, d, e.all())
	}
}

func (e *events) waitFor(d time.Duration, match func(Event) bool) (Event, bool) {
	deadline := time.After(d)
	for {
		e.mu.Lock()
		for _, ev := range e.list {
			if match(ev) {
				e.mu.Unlock()
				return ev, true
			}
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return Event{}, false
		}
	}
}

func (e *events) all() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.list...)
}

// countBetween counts the events of kind for id from from to to.
func (e *events) countBetween(kind EventKind, id string, from, to time.Time) int {
	n := 0
	for _, ev := range e.all() {
		if ev.Kind == kind && ev.ID == id && !ev.Time.Before(from) && !ev.Time.After(to) {
			n++
		}
	}
	return n
}

func (e *events) count(kind EventKind, id string) int {
	n := 0
	for _, ev := range e.all() {
		if ev.Kind == kind && ev.ID == id {
			n++
		}
	}
	return n
}

// running is a watcher started by a test.
type running struct {
	ev     *events
	cancel context.CancelFunc
	done   chan error
}

// startWatcher runs a watcher on dir until stop or the test's end.
func startWatcher(t *testing.T, dir string, opts Options) *running {
	t.Helper()
	return startWatcherThen(t, dir, opts, nil)
}

// startWatcherThen is startWatcher, calling then (if set) between New and
// Run.
func startWatcherThen(t *testing.T, dir string, opts Options, then func(*Watcher)) *running {
	t.Helper()
	r := &running{ev: newEvents(), done: make(chan error, 1)}
	opts.StateDir = dir
	opts.OnEvent = r.ev.add
	if opts.Log == nil {
		l := logrus.New()
		l.SetOutput(testWriter{t})
		l.SetLevel(logrus.DebugLevel)
		opts.Log = l
	}
	w, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if then != nil {
		then(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	r.ev.wait(t, EventReady, "", 5*time.Second)
	return r
}

// stop ends the watcher; bounded.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(DefaultShutdown + 3*time.Second):
		t.Errorf("watcher did not stop")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// saveRecord records pid as container id in dir, as the hook would.
func saveRecord(t testing.TB, dir, id string, pid int) *record.Record {
	t.Helper()
	rec, err := record.NewRecord(proc.NewFS(""), id, pid, time.Now())
	if err != nil {
		t.Fatalf("NewRecord: %v", err)
	}
	if err := (record.Store{Dir: dir}).Save(rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// shellContainer is a container whose init is busybox sh running a
// script, in new PID and mount namespaces: the shapes the fixture's
// scenarios do not build (an init that exits by itself, a mount made after
// start, a slow clean exit). $FF is the fusefixture binary, $D a scratch
// directory, $M a mountpoint in it.
type shellContainer struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string
	mnt     string
	bin     string
	out     *lineLog
	reaped  chan struct{}
	exitErr error
	reapAt  time.Time
}

func startShell(t *testing.T, script string) *shellContainer {
	t.Helper()
	testenv.RequireFUSE(t)
	sh := testenv.RequireBinary(t, "busybox")
	bin := fixture.Binary(t)
	dir, err := os.MkdirTemp("", "watch-sh-")
	if err != nil {
		t.Fatal(err)
	}
	c := &shellContainer{t: t, dir: dir, mnt: filepath.Join(dir, "mnt"), bin: bin, out: newLineLog(), reaped: make(chan struct{})}
	if err := os.Mkdir(c.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(sh, "sh", "-c", script)
	c.cmd.Env = append(os.Environ(), "FF="+bin, "D="+dir, "M="+c.mnt)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNS, // Go makes / rprivate in the child
		Pdeathsig:    syscall.SIGKILL,
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = w, w
	err = c.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c.out.add(sc.Text())
		}
		r.Close()
	}()
	go func() {
		c.exitErr = c.cmd.Wait()
		c.reapAt = time.Now()
		close(c.reaped)
	}()
	return c
}

// startSelfExit starts W2 whose main process exits by itself (no kill):
// busybox sh is init, runs the self-deadlocking daemon and exits once it
// is armed. It records the container as id in dir and returns once the
// exit has begun, with the connection it wedges on.
func startSelfExit(t *testing.T, dir, id string) (*shellContainer, *record.Record, fuseconn.ConnID) {
	t.Helper()
	c := startShell(t, `"$FF" serve -mode read -mount "$M" -name ndrive -self-read -ready "$D/ready" &
while [ ! -s "$D/ready" ]; do busybox sleep 0.05; done
exit 0`)
	rec := saveRecord(t, dir, id, c.pid())
	conn, _ := c.conn(10 * time.Second)
	if _, _, ok := c.out.wait("fusefixture: ready role=serve", 10*time.Second); !ok {
		t.Fatalf("daemon not armed:\n%s", c.out)
	}
	return c, rec, conn
}

func (c *shellContainer) pid() int { return c.cmd.Process.Pid }

// recordedWithin waits for c's FUSE mount and asserts that the watcher
// recorded it in id's record within a second of the daemon announcing it.
func recordedWithin(t *testing.T, r *running, c *shellContainer, id string) fuseconn.ConnID {
	t.Helper()
	conn, mountedAt := c.conn(10 * time.Second)
	ev := r.ev.wait(t, EventRefreshed, id, 3*time.Second)
	lag := ev.Time.Sub(mountedAt)
	t.Logf("mount recorded %s after the daemon announced it", lag.Round(time.Millisecond))
	if !slices.Contains(ev.Conns, conn) {
		t.Fatalf("refreshed with %v, want %d", ev.Conns, conn)
	}
	if lag > time.Second {
		t.Errorf("recorded %s after mounting, want within 1s", lag)
	}
	return conn
}

// conn waits for the daemon's "mounted" line and returns its connection and
// when the line was read.
func (c *shellContainer) conn(d time.Duration) (fuseconn.ConnID, time.Time) {
	c.t.Helper()
	line, at, ok := c.out.wait("fusefixture: mounted ", d)
	if !ok {
		c.t.Fatalf("no mount within %s; output:\n%s", d, c.out)
	}
	return fixture.ConnFromOutput(c.t, line), at
}

// ours lists the FUSE connections mounted below dir in the namespace's
// mount tables: ids are reused at once, so only a mount proves ownership.
func (c *shellContainer) ours() []fuseconn.ConnID {
	var ids []fuseconn.ConnID
	seen := map[fuseconn.ConnID]bool{}
	p := proc.NewFS("")
	pids, _ := p.Descendants(c.pid()) // none once it is reaped
	for _, pid := range pids {
		infos, err := p.MountInfo(pid)
		if err != nil {
			continue
		}
		for _, m := range fuseconn.FUSEMounts(infos) {
			if strings.HasPrefix(m.MountPoint, c.dir+"/") && !seen[m.Conn] {
				seen[m.Conn] = true
				ids = append(ids, m.Conn)
			}
		}
	}
	return ids
}

func (c *shellContainer) cleanup() {
	ctl := fuseconn.NewControl("")
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, id := range c.ours() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = ctl.Abort(ctx, id)
			cancel()
		}
		pids, _ := proc.NewFS("").Descendants(c.pid())
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		select {
		case <-c.reaped:
			os.RemoveAll(c.dir)
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Errorf("container %d not reaped; output:\n%s", c.pid(), c.out)
			return
		}
	}
}

// lineLog is a process's output, line by line, with when each arrived.
type lineLog struct {
	mu      sync.Mutex
	lines   []string
	at      []time.Time
	changed chan struct{}
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.at = append(l.at, time.Now())
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *lineLog) wait(prefix string, d time.Duration) (string, time.Time, bool) {
	deadline := time.After(d)
	for {
		l.mu.Lock()
		for i, s := range l.lines {
			if strings.HasPrefix(s, prefix) {
				at := l.at[i]
				l.mu.Unlock()
				return s, at, true
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return "", time.Time{}, false
		}
	}
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// aborted lists the connections a rescue aborted.
func aborted(rep *killer.Report) []fuseconn.ConnID {
	if rep == nil {
		return nil
	}
	var ids []fuseconn.ConnID
	for _, a := range rep.Aborted {
		ids = append(ids, a.Conn)
	}
	return ids
}
