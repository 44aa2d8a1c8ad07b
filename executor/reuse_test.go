package executor_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/test/fixture"
)

// testReusedConn is the id-reuse break through the executor library: the
// container's record names its own connection N; the container unmounts
// it; a host mount is handed N and a host reader waits on it; Kill of the
// container, wedged on its other mount, must rescue it and leave the
// host's N serving, its reader still waiting. Run alone: a FUSE mount of a
// parallel test could take the freed id first.
func testReusedConn(t *testing.T, e *env) {
	k, _ := e.killer(t)
	c := e.run(t, "sh", "-c", "mkdir -p /own && exec /fusefixture init -- /fusefixture serve -mode read -mount /mnt -name ndrive -self-read -- /fusefixture serve -mode healthy -mount /own -name ownfs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs, err := e.d.WaitLog(ctx, c.id, "fusefixture: blocked op=READ")
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	logs, err = e.d.WaitLog(ctx, c.id, "dir=/own ")
	own, ok := fixture.MountedConnAt(logs, "/own")
	if err != nil || !ok {
		t.Fatalf("no mount of /own (%v):\n%s", err, logs)
	}
	rec := e.record(t, c)
	rc, ok := rec.Lookup(own)
	if !ok || rc.Gen == 0 || !rc.Owned {
		t.Fatalf("record lacks the container's own connection %d with its generation: %+v", own, rec.Connections)
	}
	fixture.UnmountInside(t, c.init, "/own", rc.Ref())
	reused := fixture.HostReuse(t, own, rc.Gen)

	rep, err := k.Kill(ctx, c.id)
	logReport(t, rep)
	if err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if rep.Outcome != killer.OutcomeRecovered || !abortedConn(rep, c.conn) || abortedConn(rep, uint32(reused.Conn)) {
		t.Fatalf("Kill: outcome %s, aborted %+v; want recovered, %d aborted and not %d", rep.Outcome, rep.Rescue, c.conn, reused.Conn)
	}
	if !slices.ContainsFunc(rep.Rescue.Refused, func(a killer.Abort) bool {
		return a.Conn == fuseconn.ConnID(reused.Conn) && strings.Contains(a.Reason, "replaced since it was recorded")
	}) {
		t.Errorf("refused %+v, want %d refused as replaced", rep.Rescue.Refused, reused.Conn)
	}
	if err := reused.Intact(ctx); err != nil {
		t.Fatalf("the host's connection %d after the executor's Kill: %v", reused.Conn, err)
	}
}
