package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/untrusted"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgwatch"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/fusefixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestDiagnoseEscapesHostileNames: a container whose processes are named
// with terminal escapes and whose FUSE mount point holds a newline, an OSC
// title sequence, a bell and a bidi override. `fuseguard diagnose` shows
// both, escaped, and no control byte reaches the terminal; --json decodes
// to the raw values and its text holds no control either.
func TestDiagnoseEscapesHostileNames(t *testing.T) {
	// The fixture's processes inherit the environment: not parallel.
	const comm = "ev\x1b[2J\r\u202eil" // 13 bytes: the kernel keeps 15
	t.Setenv(fusefixture.EnvComm, comm)
	c := fixture.W1(t, false)
	evil := moveMount(t, c, "m\n\x1b]0;pwned\a\u202efdp.exe")
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}

	d := diagnoseKilled(t, c.InitPID)
	// JSON keeps the raw values, and its text holds none: encoding/json
	// writes the bidi override raw, untrusted.JSON escapes it.
	stdout, stderr, code := fg(t, "diagnose", "--json", fmt.Sprint(c.InitPID))
	if code != exitOK {
		t.Fatalf("diagnose --json: exit %d\n%s", code, stderr)
	}
	assertNoControl(t, stdout)
	if !slices.ContainsFunc(d.Stuck, func(k killer.Task) bool { return k.Comm == comm }) {
		t.Fatalf("no stuck task named %q in %+v", comm, d.Stuck)
	}
	if len(d.Plan) != 1 || d.Plan[0].Conn != c.Conn || d.Plan[0].MountPoint != evil {
		t.Fatalf("plan %+v, want connection %d at %q", d.Plan, c.Conn, evil)
	}

	stdout, stderr, code = fg(t, "diagnose", fmt.Sprint(c.InitPID))
	if code != exitOK {
		t.Fatalf("diagnose: exit %d\n%s", code, stderr)
	}
	t.Logf("diagnose:\n%s", stdout)
	assertNoControl(t, stdout)
	assertNoControl(t, stderr)
	for _, want := range []string{
		fmt.Sprintf("(%s) is D", untrusted.Text(comm)),
		fmt.Sprintf("kill would abort connection %d (fuse.wedgefs at %s)", c.Conn, untrusted.Text(evil)),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("diagnose output lacks %q", want)
		}
	}

	// kill's text output and log lines: the rescue aborts the connection.
	stdout, stderr, code = fg(t, "kill", "--verify-only", fmt.Sprint(c.InitPID))
	t.Logf("kill (exit %d):\n%s\n%s", code, stdout, stderr)
	assertNoControl(t, stdout)
	assertNoControl(t, stderr)
	if code != exitOK || !strings.Contains(stdout, fmt.Sprintf("connection %d aborted", c.Conn)) {
		t.Errorf("kill did not report connection %d aborted (exit %d)", c.Conn, code)
	}
}

// moveMount moves c's FUSE mount, in its mount namespace, to name in its
// scratch directory, so that it is the only name the connection has there,
// and returns the new mount point.
func moveMount(t *testing.T, c *fixture.Container, name string) string {
	t.Helper()
	evil := filepath.Join(c.Dir, name)
	if err := os.Mkdir(evil, 0o755); err != nil {
		t.Fatal(err)
	}
	fixture.InMountNamespace(t, c.InitPID, func() error {
		if err := unix.Mount(c.Mountpoint, evil, "", unix.MS_BIND, ""); err != nil {
			return err
		}
		return unix.Unmount(c.Mountpoint, unix.MNT_DETACH)
	})
	return evil
}

// TestWatchLogEscapesHostileNames: `fuseguard watch --log-format json`
// rescues a container whose stuck task is named with a C1 CSI (U+009B) and
// a bidi override (U+202E) and whose FUSE mount point holds both.
// encoding/json writes these raw; watch.log's bytes must hold neither (nor
// any other control: whatever line names the task or the mount), and its
// abort line must decode to the exact mount point.
func TestWatchLogEscapesHostileNames(t *testing.T) {
	testenv.RequireRoot(t)
	// The fixture's processes inherit the environment: not parallel.
	const comm = "ev\u009b2J\u202eil" // 11 bytes: the kernel keeps 15
	t.Setenv(fusefixture.EnvComm, comm)
	dir := testenv.StateDir(t)
	logPath := filepath.Join(dir, "watch.log")
	c := fixture.W1(t, false)
	evil := moveMount(t, c, "m\u009b31m\u202efdp.exe")
	rec, err := record.NewRecord(proc.NewFS(""), "hostile", c.InitPID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rc, ok := rec.Lookup(c.Conn); !ok || rc.MountPoint != evil {
		t.Fatalf("record: connection %d present=%v at %q, want it at %q", c.Conn, ok, rc.MountPoint, evil)
	}
	if err := (record.Store{Dir: dir}).Save(rec); err != nil {
		t.Fatal(err)
	}
	fgwatch.StartWatcher(t, dir, "watch.log")
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	lines := fgwatch.AssertRescued(t, logPath, "hostile", c.Conn)

	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	assertNoControl(t, string(raw))
	i := slices.IndexFunc(lines, fgwatch.IsAbort)
	var abort struct {
		MountPoint string `json:"mount_point"`
	}
	if err := json.Unmarshal([]byte(lines[i]), &abort); err != nil {
		t.Fatal(err)
	}
	if abort.MountPoint != evil {
		t.Errorf("abort line's mount point decodes as %q, want %q:\n%s", abort.MountPoint, evil, lines[i])
	}
	t.Logf("abort line: %s", lines[i])
}

// TestStateLogEscapes: the hook's JSON log, in hook.log and copied to
// stderr, holds no control a container put in a field, and decodes to the
// exact value.
func TestStateLogEscapes(t *testing.T) {
	const hostile = "/m\u009b31m\u202e\x1b]0;t\a\u2066"
	dir := testenv.StateDir(t)
	var stderr strings.Builder
	a := &app{stdout: io.Discard, stderr: &stderr}
	log, closeLog := stateLog(a, dir, "hook.log", &stderr)
	log.WithField("mount_point", hostile).Warn(hostile)
	closeLog()
	file, err := os.ReadFile(filepath.Join(dir, "hook.log"))
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"hook.log": string(file), "stderr": stderr.String()} {
		assertNoControl(t, out)
		var e struct {
			Msg        string
			MountPoint string `json:"mount_point"`
		}
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatalf("%s: %v: %q", name, err, out)
		}
		if e.Msg != hostile || e.MountPoint != hostile {
			t.Errorf("%s decodes as %+v, want %q", name, e, hostile)
		}
	}
}

// TestStatusEscapes: a record's mount point, fs type and id cannot put
// escapes on the screen or break the table; ownership unknown is shown.
func TestStatusEscapes(t *testing.T) {
	conn := record.RecordedConnection{Connection: fuseconn.Connection{
		Mount:            fuseconn.Mount{Conn: 42, FSType: "fuse.x\x1b[2J", MountPoint: "/m\n\tfake\x9b31m\u202e"},
		OwnershipUnknown: "host mount table unreadable: x",
	}}
	st := watch.Status{StateDir: "/run/fg\r", WatcherPID: 0, Containers: []watch.Tracked{{
		ID: "c\x1b]0;t\a", InitPID: 7, Init: watch.InitRunning,
		Connections: []watch.ConnStatus{{RecordedConnection: conn, Live: true, Waiting: 1}},
	}}}
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	t.Logf("status:\n%s", out)
	assertNoControl(t, out)
	if lines := strings.Count(out, "\n"); lines != 3 {
		t.Errorf("status has %d lines, want 3 (watcher, header, one connection)", lines)
	}
	for _, want := range []string{untrusted.Text(conn.MountPoint), untrusted.Text(conn.FSType), untrusted.Text(st.Containers[0].ID), "unknown"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q", want)
		}
	}
}

// assertNoControl fails when out holds anything but printable text and
// line ends: no ESC, CR, BEL, C1 control, invalid UTF-8 or bidi control.
func assertNoControl(t *testing.T, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("output is not valid UTF-8: %q", out)
	}
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			t.Fatalf("output holds %U: %q", r, out)
		}
	}
}

// TestKillMmapFaultAllowedSharedKept: `fuseguard kill
// --allow-shared-fstype` of W7 (copy-out). The stuck task's blocked
// read(2) names an fd of the shared mount whose type the operator allowed,
// but the task waits under a page fault on the container's own
// connection: only that one is aborted, the task's fd evidence is reported
// as set aside, and the shared mount keeps serving.
func TestKillMmapFaultAllowedSharedKept(t *testing.T) {
	t.Parallel()
	c := fixture.W7(t, "copy-out")
	fsType, err := c.SharedFSType()
	if err != nil {
		t.Fatal(err)
	}
	rep, aborted := killJSON(t, "--verify-timeout", "1s", "--allow-shared-fstype", fsType, fmt.Sprint(c.InitPID))
	if rep.Outcome != killer.OutcomeRecovered || !slices.Equal(aborted, []fuseconn.ConnID{c.Conn}) || !rep.Aborted[0].Done {
		t.Fatalf("report: outcome %s, aborted %+v; want recovered, only the container's own connection %d (shared %d allowed as %s)",
			rep.Outcome, rep.Aborted, c.Conn, c.Shared, fsType)
	}
	if rep.Diagnosis == nil || !slices.ContainsFunc(rep.Diagnosis.Stuck, func(task killer.Task) bool {
		return task.TGID == c.FaultPID && !task.HasConn && strings.Contains(task.Untrusted, "names connection "+c.Shared.String()+",")
	}) {
		t.Errorf("faulting process %d's evidence for shared connection %d not set aside: %+v", c.FaultPID, c.Shared, rep.Diagnosis)
	}
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("init not reaped after fuseguard kill")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SharedAnswers(ctx); err != nil {
		t.Fatalf("shared connection %d no longer answers: %v", c.Shared, err)
	}
}
