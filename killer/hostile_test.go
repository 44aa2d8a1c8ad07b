package killer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
)

// Adversarial tests of ownership: a host mount table fuseguard cannot read
// (nothing is owned), and mount tables with a line over the 64 KiB that
// moby/sys/mountinfo's scanner accepts (a container makes one by mounting on
// a deep path).

// TestKillHostTableUnreadable: when the host's table cannot be read or
// parsed, no connection is owned: Kill and Diagnose abort nothing and say
// why, on a real wedged container (W1-private, whose connection would be
// aborted as owned otherwise).
func TestKillHostTableUnreadable(t *testing.T) {
	t.Parallel()
	for name, setup1 := range map[string]func(dir string){
		"garbage": fixture.GarbagePID1(t),
		"unreadable": func(dir string) {
			// A directory where the file should be: read fails (EISDIR).
			if err := os.MkdirAll(filepath.Join(dir, "mountinfo"), 0o755); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := fixture.W1(t, false)
			opts := testOptions()
			opts.Proc = fixture.ProcWithPID1(t, setup1)

			rep := killAndCheck(t, c, opts, OutcomeStillStuck)
			if rep.Diagnosis != nil {
				var b strings.Builder
				rep.Diagnosis.Explain(&b)
				t.Logf("the kill's diagnosis:\n%s", b.String())
			}
			assertRefusedUnknown(t, rep.Refused, c.Conn)
			if w, err := fuseconn.NewControl("").Waiting(c.Conn); err != nil || w == 0 {
				t.Fatalf("connection %d after the kill: waiting %d, err %v; want untouched", c.Conn, w, err)
			}

			// Init now waits in zap_pid_ns_processes: diagnose it again.
			d, err := Diagnose(context.Background(), Target{PID: c.InitPID}, opts)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			d.Explain(&b)
			t.Logf("diagnosis:\n%s", b.String())
			if len(d.Plan) != 0 {
				t.Fatalf("plan %+v with the host table unreadable, want nothing", d.Plan)
			}
			assertRefusedUnknown(t, d.Refused, c.Conn)
			if !strings.Contains(b.String(), "ownership unknown, not aborted") {
				t.Errorf("the explanation does not say why connection %d is kept", c.Conn)
			}
		})
	}
}

func assertRefusedUnknown(t *testing.T, refused []Abort, conn fuseconn.ConnID) {
	t.Helper()
	i := slices.IndexFunc(refused, func(a Abort) bool { return a.Conn == conn })
	if i < 0 {
		t.Fatalf("refused %+v, want connection %d", refused, conn)
	}
	if r := refused[i].Reason; !strings.Contains(r, "host mount table unreadable") || !strings.HasSuffix(r, "ownership unknown, not aborted") || refused[i].Owned {
		t.Fatalf("connection %d refused with %q (owned %v), want the unreadable host table named", conn, r, refused[i].Owned)
	}
}

// deepMount mounts on a path of over 64 KiB, in the mount namespace of
// nsPID (0: a private one): a tmpfs on dir, then deep directories in it,
// then bind (a tmpfs when "") on the deepest. It returns the id of the
// thread in that namespace and the deep path.
func deepMount(t *testing.T, nsPID int, dir, bind string) (int, string) {
	t.Helper()
	// Names with a space: the kernel escapes it (\040), which the parser
	// must undo across the whole line.
	name := strings.Repeat("d", 200) + " x"
	deep := dir
	tid := fixture.InMountNamespace(t, nsPID, func() error {
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
			return err
		}
		if err := unix.Chdir(dir); err != nil {
			return err
		}
		for len(deep) < 70<<10 {
			if err := unix.Mkdir(name, 0o755); err != nil {
				return err
			}
			if err := unix.Chdir(name); err != nil {
				return err
			}
			deep += "/" + name
		}
		if bind == "" {
			return unix.Mount("tmpfs", ".", "tmpfs", 0, "size=1m")
		}
		return unix.Mount(bind, ".", "", unix.MS_BIND, "")
	})
	return tid, deep
}

// assertLongLine checks that tid's mount table really has a line that
// moby/sys/mountinfo rejects, and that ours reads it with the deep path.
func assertLongLine(t *testing.T, tid int, deep string) {
	t.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	longest := 0
	for line := range bytes.Lines(raw) {
		longest = max(longest, len(line))
	}
	if longest <= 64<<10 {
		t.Fatalf("longest mountinfo line of %d is %d bytes, want over 64 KiB", tid, longest)
	}
	if _, err := mountinfo.GetMountsFromReader(bytes.NewReader(raw), nil); err == nil {
		t.Fatal("moby/sys/mountinfo read the long line: the test no longer tests the limit")
	}
	infos, err := proc.NewFS("").MountInfo(tid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(infos, func(m *mountinfo.Info) bool { return m.Mountpoint == deep }) {
		t.Fatalf("mount table of %d has no mount at the deep path", tid)
	}
}

// TestKillLongLineInHostTable: the host's table has a line over 64 KiB
// (here a bind of W5's shared lxcfs-like mount on a deep path). It is read
// all the same: the container's own connection is aborted, the shared one
// is still known as shared and keeps serving.
func TestKillLongLineInHostTable(t *testing.T) {
	t.Parallel()
	c := fixture.W5(t)
	tid, deep := deepMount(t, 0, t.TempDir(), c.SharedMountpoint)
	assertLongLine(t, tid, deep)
	opts := testOptions()
	// The namespace of that thread is the host's, as fuseguard sees it.
	opts.Proc = fixture.ProcWithPID1(t, func(dir string) {
		if err := os.Symlink("/proc/"+strconv.Itoa(tid), dir); err != nil {
			t.Fatal(err)
		}
	})
	host, err := fuseconn.HostMounts(opts.Proc)
	if err != nil {
		t.Fatalf("host table with a long line: %v", err)
	}
	if !slices.ContainsFunc(host, func(m fuseconn.Mount) bool { return m.Conn == c.Shared && m.MountPoint == deep }) {
		t.Fatalf("host table lacks the deep bind of connection %d", c.Shared)
	}
	killAndCheck(t, c, opts, OutcomeRecovered, c.Conn)
	reaped(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SharedAnswers(ctx); err != nil {
		t.Fatalf("shared connection %d no longer answers: %v", c.Shared, err)
	}
}

// TestKillLongLineInContainerTable: the container mounts on a deep path,
// making a line over 64 KiB in its own table; its wedged connection is
// still found and aborted, through the snapshot and the stuck task's table.
func TestKillLongLineInContainerTable(t *testing.T) {
	t.Parallel()
	c := fixture.W1(t, false)
	dir := filepath.Join(c.Dir, "deep")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tid, deep := deepMount(t, c.InitPID, dir, "")
	assertLongLine(t, tid, deep)
	rec, err := record.NewRecord(proc.NewFS(""), "deep", c.InitPID, time.Now())
	if err != nil {
		t.Fatalf("record of a container with a long mountinfo line: %v", err)
	}
	if got, ok := rec.Lookup(c.Conn); !ok || !got.Owned {
		t.Fatalf("record %+v lacks owned connection %d", rec.Connections, c.Conn)
	}
	killAndCheck(t, c, testOptions(), OutcomeRecovered, c.Conn)
	reaped(t, c)
}

// TestKillMmapFaultEvidenceSetAside: fd evidence faked with a page fault
// (W7, both ways the fault happens). The stuck task's blocked read(2)
// names an fd of the shared mount, but it waits on the container's own
// connection, faulting on a buffer mapped from a file there. The operator
// allows the shared fs type, so evidence naming the shared connection
// would be enough to abort it: the diagnosis must set that evidence aside,
// abort only the container's own connection, and leave the shared one
// serving.
func TestKillMmapFaultEvidenceSetAside(t *testing.T) {
	t.Parallel()
	for _, variant := range []string{"copy-out", "pin"} {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			c := fixture.W7(t, variant)
			fsType, err := c.SharedFSType()
			if err != nil {
				t.Fatal(err)
			}
			opts := testOptions()
			opts.Policy.AllowSharedFSTypes = []string{fsType}
			rep := killAndCheck(t, c, opts, OutcomeRecovered, c.Conn)
			assertEvidenceSetAside(t, c, rep)
			reaped(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.SharedAnswers(ctx); err != nil {
				t.Fatalf("shared connection %d no longer answers: %v", c.Shared, err)
			}
		})
	}
}

// assertEvidenceSetAside checks a W7 kill's report: the shared connection
// is not planned, and the faulting task's fd evidence, which names it, is
// set aside and said so.
func assertEvidenceSetAside(t *testing.T, c *fixture.Container, rep Report) {
	t.Helper()
	if i := slices.IndexFunc(rep.Aborted, func(a Abort) bool { return a.Conn == c.Shared }); i >= 0 {
		t.Errorf("shared connection %d planned for abort: %+v", c.Shared, rep.Aborted[i])
	}
	d := rep.Diagnosis
	if d == nil {
		t.Fatal("no diagnosis in the report")
	}
	// Any thread of the faulting process (fixture.Container.FaultPID).
	i := slices.IndexFunc(d.Stuck, func(task Task) bool { return task.TGID == c.FaultPID })
	if i < 0 {
		t.Fatalf("no task of faulting process %d among the stuck: %+v", c.FaultPID, d.Stuck)
	}
	task := d.Stuck[i]
	t.Logf("faulting task: blocker %s, evidence set aside: %q, stack %v", task.Blocker, task.Untrusted, task.Stack)
	if task.Blocker != BlockerFUSERequest || task.HasConn || !strings.Contains(task.Untrusted, "names connection "+c.Shared.String()+",") {
		t.Errorf("faulting task: blocker %s, has conn %v (%d), set aside %q; want %s, no conn, the shared connection %d's evidence set aside",
			task.Blocker, task.HasConn, task.Conn, task.Untrusted, BlockerFUSERequest, c.Shared)
	}
	var text strings.Builder
	d.Explain(&text)
	if !strings.Contains(text.String(), "evidence set aside") {
		t.Errorf("explanation does not say the evidence was set aside:\n%s", text.String())
	}
}
