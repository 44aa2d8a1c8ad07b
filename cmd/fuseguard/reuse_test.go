package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestKillLeavesReusedConnection: `fuseguard kill` with the container's
// record, whose own connection id now belongs to a host mount with a
// reader waiting, rescues the container and leaves the host's connection
// serving. Not parallel: a FUSE mount of a parallel test could take the
// freed id first.
func TestKillLeavesReusedConnection(t *testing.T) {
	stateDir := testenv.StateDir(t)
	c, reused := fixture.Reuse(t, func(c *fixture.Container) {
		rec, err := record.NewRecord(proc.NewFS(""), "reuse", c.InitPID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := record.NewStore(stateDir).Save(rec); err != nil {
			t.Fatal(err)
		}
	})
	rep, aborted := killJSON(t, "--id", "reuse", "--state-dir", stateDir, "--verify-timeout", "1s", fmt.Sprint(c.InitPID))
	if rep.Outcome != killer.OutcomeRecovered || !slices.Equal(aborted, []fuseconn.ConnID{c.Conn}) {
		t.Fatalf("report: outcome %s, aborted %v; want recovered, exactly [%d]\n%+v", rep.Outcome, aborted, c.Conn, rep)
	}
	if !slices.ContainsFunc(rep.Refused, func(a killer.Abort) bool {
		return a.Conn == reused.Conn && strings.Contains(a.Reason, "replaced since it was recorded")
	}) {
		t.Errorf("refused %+v, want %d refused as replaced", rep.Refused, reused.Conn)
	}
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("init not reaped after fuseguard kill")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reused.Intact(ctx); err != nil {
		t.Fatalf("the host's connection %d after fuseguard kill: %v", reused.Conn, err)
	}
}
