package watch

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// A container mounting more FUSE filesystems than MaxConnections: its
// record keeps exactly the cap, of its own mounts; the excess is counted
// in the status and logged once; and as it goes on mounting and unmounting
// FUSE, the record does not grow and nothing more is logged.
func TestConnectionCap(t *testing.T) {
	dir := testenv.StateDir(t)
	const (
		maxConns = 3
		mounts   = 5
		rounds   = 60 // churn rounds, each a new connection
		id       = "many"
	)
	// Five healthy mounts once told, one at a time; then, once told, a
	// sixth mounted and unmounted in a loop (a new connection each time),
	// counting the rounds.
	c := startShell(t, `while [ ! -e "$D/go" ]; do busybox sleep 0.05; done
i=1
while [ $i -le `+strconv.Itoa(mounts)+` ]; do
  busybox mkdir "$D/m$i"
  "$FF" serve -mode healthy -mount "$D/m$i" -ready "$D/ready$i" &
  while [ ! -s "$D/ready$i" ]; do busybox sleep 0.02; done
  i=$((i+1))
done
echo all-mounted
while [ ! -e "$D/churn" ]; do busybox sleep 0.05; done
busybox mkdir "$D/c"
n=0
while [ ! -e "$D/stop" ]; do
  "$FF" serve -mode healthy -mount "$D/c" -ready "$D/rc" & p=$!
  while [ ! -s "$D/rc" ]; do busybox sleep 0.01; done
  busybox rm "$D/rc"
  kill $p; wait $p
  n=$((n+1)); echo "$n" > "$D/count.new" && busybox mv "$D/count.new" "$D/count"
done &
wait`)
	saveRecord(t, dir, id, c.pid())
	log, hook := testLogger(t)
	r := startWatcher(t, dir, Options{MaxConnections: maxConns, Log: log})
	r.ev.wait(t, EventTracked, id, 2*time.Second)
	touch(t, c.dir, "go")
	if _, _, ok := c.out.wait("all-mounted", 20*time.Second); !ok {
		t.Fatalf("the container did not mount:\n%s", c.out)
	}
	own := mountedConns(t, c, filepath.Join(c.dir, "m"))
	if len(own) != mounts {
		t.Fatalf("mounted %v, want %d connections", own, mounts)
	}

	// The watcher has read the five: the record holds the cap, the rest
	// is counted.
	waitStatus(t, dir, 5*time.Second, func(st Status) bool {
		cw := watchOf(st, id)
		return cw != nil && cw.ConnectionsDropped == mounts-maxConns
	})
	full := recordedConns(t, dir, id)
	if len(full) != maxConns {
		t.Fatalf("record holds %v, want %d connections (the cap)", full, maxConns)
	}
	for _, conn := range full {
		if !slices.Contains(own, conn) {
			t.Errorf("record holds %d, not one of the container's mounts %v", conn, own)
		}
	}
	if n := countLog(hook.AllEntries(), logrus.WarnLevel, id, "record full"); n != 1 {
		t.Errorf("%d 'record full' lines after %d mounts over the cap, want 1", n, mounts-maxConns)
	}
	refreshed := r.ev.count(EventRefreshed, id)

	// Churn: a new connection each round. The watcher reads the table
	// meanwhile and records none of them.
	reads0 := r.ev.count(EventMountRead, id)
	touch(t, c.dir, "churn")
	waitChurning(t, c.dir)
	for churnCount(t, c.dir) < rounds {
		time.Sleep(50 * time.Millisecond)
	}
	touch(t, c.dir, "stop")
	time.Sleep(2 * DefaultMountReadInterval) // the last change is read
	churned := mountedConns(t, c, filepath.Join(c.dir, "c"))
	t.Logf("%d churn rounds (connection ids %v, each round a new instance), %d reads of the table", churnCount(t, c.dir), churned, r.ev.count(EventMountRead, id)-reads0)
	if r.ev.count(EventMountRead, id) == reads0 {
		t.Fatal("the watcher did not read the churning table: the test shows nothing")
	}
	if got := recordedConns(t, dir, id); !slices.Equal(got, full) {
		t.Errorf("record after the churn %v, want it unchanged %v", got, full)
	}
	if n := r.ev.count(EventRefreshed, id); n != refreshed {
		t.Errorf("%d connections added to the full record during the churn", n-refreshed)
	}
	if n := countLog(hook.AllEntries(), logrus.WarnLevel, id, "record full"); n != 1 {
		t.Errorf("%d 'record full' lines after the churn, want still 1", n)
	}
	st := waitStatus(t, dir, 2*time.Second, func(st Status) bool { return watchOf(st, id) != nil })
	if cw := watchOf(st, id); cw.ConnectionsDropped < mounts-maxConns || cw.ConnectionsDropped > mounts-maxConns+1 {
		t.Errorf("status counts %d dropped, want %d or, with a churn mount up, one more", cw.ConnectionsDropped, mounts-maxConns)
	}
}

// mountedConns lists the connections the container's daemons announced
// mounting at a mountpoint starting with prefix, in order, each once.
func mountedConns(t *testing.T, c *shellContainer, prefix string) []fuseconn.ConnID {
	t.Helper()
	var ids []fuseconn.ConnID
	for _, line := range strings.Split(c.out.String(), "\n") {
		if strings.HasPrefix(line, "fusefixture: mounted ") && strings.Contains(line, " dir="+prefix) {
			if id := fixture.ConnFromOutput(t, line); !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// recordedConns is the connections of id's saved record.
func recordedConns(t *testing.T, dir, id string) []fuseconn.ConnID {
	t.Helper()
	rec, err := record.Store{Dir: dir}.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	return connIDs(rec.Connections)
}

func touch(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}
