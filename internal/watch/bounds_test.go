package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// The bound the issue asks of a stuck exit next to a storm or a failing
// rescue: rescued within the grace and one second, with a check interval
// short enough to leave the rescue its share of that second.
const (
	boundCheck = 250 * time.Millisecond
	isoBound   = DefaultGrace + time.Second + raceSlack
)

func TestBackoff(t *testing.T) {
	const base, limit = 100 * time.Millisecond, time.Second
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{0, base}, {1, base}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond}, {5, limit}, {60, limit},
	}
	for _, tt := range tests {
		if got := backoff(base, limit, tt.failures); got != tt.want {
			t.Errorf("backoff(%s, %s, %d) = %s, want %s", base, limit, tt.failures, got, tt.want)
		}
	}
	if got := backoff(time.Hour, time.Minute, 1); got != time.Minute {
		t.Errorf("a base above the cap: %s, want the cap", got)
	}
}

// testLogger logs to the test and keeps every entry for assertions.
func testLogger(t *testing.T) (*logrus.Logger, *logtest.Hook) {
	l := logrus.New()
	l.SetOutput(testWriter{t})
	l.SetLevel(logrus.DebugLevel)
	return l, logtest.NewLocal(l)
}

// waitStatus polls ReadStatus until ok holds, within d.
func waitStatus(t *testing.T, dir string, d time.Duration, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(d)
	var st Status
	for {
		st = ReadStatus(context.Background(), proc.NewFS(""), record.Store{Dir: dir}, fuseconn.NewControl(""))
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status not as expected within %s: %+v (watcher %+v)", d, st, st.Watcher)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killRescued kills c's init (its own end, not fuseguard's) and requires
// the watcher to have it reaped within bound.
func killRescued(t *testing.T, r *running, c *fixture.Container, bound time.Duration, what string) {
	t.Helper()
	killedAt := time.Now()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Exited():
	case <-time.After(bound + 2*time.Second):
		t.Fatalf("%s: not rescued within %s; events %v\n%s", what, bound, r.ev.all(), explainRescues(r))
	}
	took := time.Since(killedAt)
	t.Logf("%s: reaped %s after its init was killed (bound %s)", what, took.Round(time.Millisecond), bound)
	if took > bound {
		t.Errorf("%s: reaped after %s, want within %s", what, took, bound)
	}
}

func watchOf(st Status, id string) *ContainerWatch {
	for _, c := range st.Containers {
		if c.ID == id {
			return c.Watch
		}
	}
	return nil
}

// A container mounting and unmounting in a tight loop costs the watcher at
// most one read of its mount table per MountReadInterval; meanwhile
// another container whose init exits on its own while wedged (W2) is
// rescued within the grace and a second, and a FUSE mount the churning
// container makes later is still recorded within a second.
func TestMountChurnCoalesced(t *testing.T) {
	dir := testenv.StateDir(t)
	const churnID = "churn"
	r := startWatcher(t, dir, Options{CheckInterval: boundCheck})
	churn := startShell(t, `busybox mkdir "$D/t"
i=0
while [ ! -e "$D/stop" ]; do
  busybox mount -t tmpfs churn "$D/t" && busybox umount "$D/t"
  i=$((i+1))
  [ $((i % 20)) = 0 ] && echo "$i" > "$D/count.new" && busybox mv "$D/count.new" "$D/count"
done &
while [ ! -e "$D/go" ]; do busybox sleep 0.05; done
"$FF" serve -mode healthy -mount "$M" -ready "$D/ready" &
wait`)
	saveRecord(t, dir, churnID, churn.pid())
	r.ev.wait(t, EventTracked, churnID, 2*time.Second)

	// The storm is on before the wedge starts, and lasts through it: a
	// second of it at least, and its first count (slower to come in a VM
	// without KVM: make kernels).
	time.Sleep(time.Second)
	waitChurning(t, churn.dir)
	changes0, at0 := churnCount(t, churn.dir), time.Now()

	wedged, rec, conn := startSelfExit(t, dir, "wedged")
	exitAt := time.Now()
	select {
	case <-wedged.reaped:
	case <-time.After(isoBound + 2*time.Second):
		t.Fatalf("wedged init not reaped; events %v", r.ev.all())
	}
	took := wedged.reapAt.Sub(exitAt)
	t.Logf("wedged init reaped %s after its exit began, beside the storm", took.Round(time.Millisecond))
	if took > isoBound {
		t.Errorf("reaped after %s, want within %s\n%s", took, isoBound, explainRescues(r))
	}
	if ev := r.ev.wait(t, EventRescued, rec.ID, time.Second); !slices.Equal(aborted(ev.Report), []fuseconn.ConnID{conn}) {
		t.Errorf("aborted %v, want [%d]", aborted(ev.Report), conn)
	}

	changes1, at1 := churnCount(t, churn.dir), time.Now()
	n := r.ev.countBetween(EventMountRead, churnID, at0, at1)
	window := at1.Sub(at0)
	changes := 2 * (changes1 - changes0) // a mount and an unmount per round
	t.Logf("over %s: %d mount-table changes, %d reads of the table", window.Round(time.Millisecond), changes, n)
	// One read per slot, and one more for the slot the window cuts.
	if limit := int(window/DefaultMountReadInterval) + 2; n > limit {
		t.Errorf("%d reads of the churning mount table in %s, want at most %d (one per %s)", n, window, limit, DefaultMountReadInterval)
	}
	if n == 0 {
		t.Errorf("no read of the churning mount table in %s: changes are not seen at all", window)
	}
	if changes < 4*n {
		t.Fatalf("only %d changes for %d reads: the storm is too slow to show coalescing", changes, n)
	}

	// A FUSE mount made in the middle of the storm is recorded within 1 s.
	if err := os.WriteFile(filepath.Join(churn.dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	recordedWithin(t, r, churn, churnID)
}

// waitChurning waits until the churning shell has reported its first
// rounds.
func waitChurning(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "count")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("churning shell reported no round within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// churnCount is the number of mount/unmount rounds the churning shell
// has reported.
func churnCount(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "count"))
	if err != nil {
		t.Fatalf("churn count: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("churn count %q: %v", b, err)
	}
	return n
}

// A container whose rescue cannot succeed (its task waits on a shared
// connection, which the policy never aborts) is retried with a doubling
// backoff, shown by status, and never delays the rescue of another
// container: with a single rescue slot, the wedged W2 is still rescued
// within the grace and a second.
func TestFailingRescueIsolated(t *testing.T) {
	dir := testenv.StateDir(t)
	const retry, maxRetry = 200 * time.Millisecond, 800 * time.Millisecond
	stuck := fixture.W1(t, true)
	wedged := fixture.W2(t, "read")
	recStuck := saveRecord(t, dir, "refused", stuck.InitPID)
	recWedged := saveRecord(t, dir, "wedged", wedged.InitPID)
	r := startWatcher(t, dir, Options{
		CheckInterval: boundCheck, RetryInterval: retry, MaxRetryInterval: maxRetry, MaxRescues: 1,
	})
	r.ev.wait(t, EventTracked, recStuck.ID, 2*time.Second)
	r.ev.wait(t, EventTracked, recWedged.ID, 2*time.Second)

	if err := stuck.Kill(); err != nil {
		t.Fatal(err)
	}
	first := r.ev.wait(t, EventRescued, recStuck.ID, isoBound+2*time.Second)
	if !errors.Is(first.Err, killer.ErrStillStuck) || len(first.Report.Aborted) != 0 {
		t.Fatalf("rescue of the refused container: %v, aborted %v; want still stuck, nothing aborted", first.Err, aborted(first.Report))
	}
	if !slices.ContainsFunc(first.Report.Refused, func(a killer.Abort) bool { return a.Conn == stuck.Conn }) {
		t.Fatalf("the shared connection %d is not among the refused: %+v", stuck.Conn, first.Report.Refused)
	}

	killRescued(t, r, wedged, isoBound, "the wedged container beside a failing rescue")

	// The failing one backs off: status shows the failures and the
	// doubling wait, capped.
	st := waitStatus(t, dir, 5*time.Second, func(st Status) bool {
		cw := watchOf(st, recStuck.ID)
		return cw != nil && cw.Rescue == RescueBackoff && cw.Failures >= 4
	})
	cw := watchOf(st, recStuck.ID)
	if want := backoff(retry, maxRetry, cw.Failures); cw.Backoff != want || cw.NextRescue.IsZero() {
		t.Errorf("status after %d failures: backoff %s next %v, want %s", cw.Failures, cw.Backoff, cw.NextRescue, want)
	}
	if !strings.Contains(cw.LastError, killer.ErrStillStuck.Error()) {
		t.Errorf("status last error %q, want %q", cw.LastError, killer.ErrStillStuck)
	}
	if st.Watcher == nil || st.Watcher.MaxRescues != 1 || st.Watcher.RescuesAbandoned != 0 {
		t.Errorf("watcher state %+v", st.Watcher)
	}
	// No rescue came before its backoff ran out.
	var at []time.Time
	for _, ev := range r.ev.all() {
		if ev.ID == recStuck.ID && (ev.Kind == EventDetected || ev.Kind == EventRescued) {
			at = append(at, ev.Time)
		}
	}
	for i := 2; i+1 < len(at); i += 2 { // at: detected, rescued, detected, rescued, …
		failures := i / 2
		if gap, want := at[i].Sub(at[i-1]), backoff(retry, maxRetry, failures); gap < want {
			t.Errorf("rescue %d came %s after the last failure, before its backoff %s", failures+1, gap, want)
		}
	}
}

// Past MaxTracked a record is refused with a log line and shown by status,
// then tracked once room frees up; a mount table larger than MaxMountInfo
// is not read (the record keeps what it has), for that container only.
func TestCaps(t *testing.T) {
	t.Run("tracked", func(t *testing.T) {
		dir := testenv.StateDir(t)
		for _, id := range []string{"a", "b", "c"} {
			saveRecord(t, dir, id, os.Getpid())
		}
		log, hook := testLogger(t)
		r := startWatcher(t, dir, Options{MaxTracked: 2, Log: log})
		r.ev.wait(t, EventTracked, "a", time.Second)
		r.ev.wait(t, EventTracked, "b", time.Second)
		r.ev.wait(t, EventRefused, "c", time.Second)
		if n := r.ev.count(EventTracked, "c"); n != 0 {
			t.Fatalf("c tracked %d times over the cap", n)
		}
		if !slices.ContainsFunc(hook.AllEntries(), func(e *logrus.Entry) bool {
			return e.Level == logrus.ErrorLevel && e.Data["container"] == "c" && strings.Contains(e.Message, "not tracking container")
		}) {
			t.Errorf("no error line for the refused record")
		}
		st := waitStatus(t, dir, 2*time.Second, func(st Status) bool { return st.Watcher != nil && st.Watcher.NotTracked == 1 })
		if cw := watchOf(st, "c"); cw == nil || !cw.NotTracked || st.Watcher.Tracked != 2 || st.Watcher.MaxTracked != 2 {
			t.Errorf("status: watcher %+v, c %+v", st.Watcher, cw)
		}
		if err := (record.Store{Dir: dir}).Remove("a"); err != nil {
			t.Fatal(err)
		}
		r.ev.wait(t, EventTracked, "c", 2*time.Second)
		waitStatus(t, dir, 2*time.Second, func(st Status) bool {
			return st.Watcher != nil && st.Watcher.NotTracked == 0 && watchOf(st, "c") == nil
		})
	})

	t.Run("mountinfo", func(t *testing.T) {
		dir := testenv.StateDir(t)
		// big mounts 200 tmpfs before its FUSE mount; small only the FUSE
		// mount. Both mount FUSE once told, after their records exist.
		big := startShell(t, `busybox mkdir "$D/m"
i=0
while [ $i -lt 200 ]; do busybox mkdir "$D/m/$i"; busybox mount -t tmpfs big "$D/m/$i"; i=$((i+1)); done
echo tmpfs-done
while [ ! -e "$D/go" ]; do busybox sleep 0.05; done
"$FF" serve -mode healthy -mount "$M" -ready "$D/ready" &
wait`)
		small := startShell(t, `while [ ! -e "$D/go" ]; do busybox sleep 0.05; done
"$FF" serve -mode healthy -mount "$M" -ready "$D/ready" &
wait`)
		if _, _, ok := big.out.wait("tmpfs-done", 20*time.Second); !ok {
			t.Fatalf("big did not mount:\n%s", big.out)
		}
		saveRecord(t, dir, "big", big.pid())
		saveRecord(t, dir, "small", small.pid())
		smallTable, err := os.ReadFile("/proc/" + strconv.Itoa(small.pid()) + "/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		bigTable, err := os.ReadFile("/proc/" + strconv.Itoa(big.pid()) + "/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		limit := len(smallTable) + 4<<10
		if len(bigTable) <= limit {
			t.Fatalf("big's table (%d bytes) fits the cap %d", len(bigTable), limit)
		}
		r := startWatcher(t, dir, Options{MaxMountInfo: limit})
		st := waitStatus(t, dir, 2*time.Second, func(st Status) bool {
			cw := watchOf(st, "big")
			return cw != nil && cw.MountTableError != ""
		})
		if cw := watchOf(st, "big"); !strings.Contains(cw.MountTableError, errMountTableTooBig.Error()) {
			t.Errorf("big's mount table error %q, want %q", cw.MountTableError, errMountTableTooBig)
		}
		if cw := watchOf(st, "small"); cw != nil && cw.MountTableError != "" {
			t.Errorf("small's mount table: %q", cw.MountTableError)
		}
		for _, c := range []*shellContainer{big, small} {
			if err := os.WriteFile(filepath.Join(c.dir, "go"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		smallConn, _ := small.conn(10 * time.Second)
		bigConn, _ := big.conn(10 * time.Second)
		if ev := r.ev.wait(t, EventRefreshed, "small", 2*time.Second); !slices.Contains(ev.Conns, smallConn) {
			t.Errorf("small refreshed with %v, want %d", ev.Conns, smallConn)
		}
		// The small one's mount is recorded; the big one's table, read
		// again on the same change, still fails: nothing of it is recorded.
		time.Sleep(2 * DefaultMountReadInterval)
		if n := r.ev.count(EventRefreshed, "big"); n != 0 {
			t.Errorf("big refreshed %d times from a table over the cap", n)
		}
		rec, err := record.Store{Dir: dir}.Load("big")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := rec.Lookup(bigConn); ok {
			t.Errorf("big's record holds conn %d from a table over the cap", bigConn)
		}
	})
}
