package watch

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestRescueLeavesReusedConnection is the id-reuse break through the
// watcher: the record names the container's own connection N, the
// container unmounts it, a host mount is handed N and a host reader waits
// on it; init then dies (SIGKILL, as an OOM kill would) and wedges on the
// container's other mount. The watcher's rescue must abort only that one
// and leave the host's N serving, its reader still waiting. Not parallel:
// a FUSE mount of a parallel test could take the freed id first.
func TestRescueLeavesReusedConnection(t *testing.T) {
	dir := testenv.StateDir(t)
	var rec *record.Record
	c, reused := fixture.Reuse(t, func(c *fixture.Container) { rec = saveRecord(t, dir, "reuse", c.InitPID) })
	if rc, ok := rec.Lookup(reused.Conn); !ok || rc.Gen != reused.OwnGen {
		t.Fatalf("record lacks the container's own connection %d (generation %d): %+v", reused.Conn, reused.OwnGen, rec.Connections)
	}
	r := startWatcher(t, dir, Options{})
	r.ev.wait(t, EventTracked, rec.ID, time.Second)
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Exited():
	case <-time.After(rescueBound + time.Second):
		t.Fatalf("init %d not reaped within %s; events %v", c.InitPID, rescueBound, r.ev.all())
	}
	ev := r.ev.wait(t, EventRescued, rec.ID, time.Second)
	if got := aborted(ev.Report); !slices.Equal(got, []fuseconn.ConnID{c.Conn}) {
		t.Errorf("aborted %v, want exactly [%d]; report %+v", got, c.Conn, ev.Report)
	}
	if ev.Report == nil || !slices.ContainsFunc(ev.Report.Refused, func(a killer.Abort) bool {
		return a.Conn == reused.Conn && strings.Contains(a.Reason, "replaced since it was recorded")
	}) {
		t.Errorf("report %+v does not refuse %d as replaced", ev.Report, reused.Conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reused.Intact(ctx); err != nil {
		t.Fatalf("the host's connection %d after the watcher's rescue: %v", reused.Conn, err)
	}
}
