package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/test/fixture"
)

// killScenario runs `fuseguard kill --json` with the test bounds and extra
// flags on c's init, checks the exit code and returns the report.
func killScenario(t *testing.T, c *fixture.Container, wantCode int, extra ...string) killer.Report {
	t.Helper()
	args := append([]string{"kill", "--json", "--verify-timeout", "1s", "--recover-timeout", "2s"}, extra...)
	stdout, stderr, code := fg(t, append(args, fmt.Sprint(c.InitPID))...)
	if code != wantCode {
		t.Fatalf("%s: fuseguard %v: exit %d, want %d\n%s\n%s\n%s", c.Scenario, args, code, wantCode, stdout, stderr, c.Logs())
	}
	var rep killer.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%s: --json output: %v\n%s", c.Scenario, err, stdout)
	}
	return rep
}

// abortedDone is the connections the report says were aborted.
func abortedDone(rep killer.Report) []fuseconn.ConnID {
	var got []fuseconn.ConnID
	for _, a := range rep.Aborted {
		if a.Done {
			got = append(got, a.Conn)
		}
	}
	return got
}

// TestKillScenarios rescues every wedge of docs/design.md through the command,
// as an operator would: `fuseguard kill` aborts exactly the container's
// own connection; a connection in the host's table is refused until the
// operator allows its fs type (then a --verify-only pass rescues it); a
// healthy container just exits; a shared host mount keeps serving.
func TestKillScenarios(t *testing.T) {
	cases := []struct {
		name   string
		make   func(testing.TB) *fixture.Container
		shared bool // the wedged connection is in the host's table: refused by default
	}{
		{"W1-private", func(t testing.TB) *fixture.Container { return fixture.W1(t, false) }, false},
		{"W1-shared", func(t testing.TB) *fixture.Container { return fixture.W1(t, true) }, true},
		{"W2-read", func(t testing.TB) *fixture.Container { return fixture.W2(t, "read") }, false},
		{"W2-lookup", func(t testing.TB) *fixture.Container { return fixture.W2(t, "lookup") }, false},
		{"W3-inside", func(t testing.TB) *fixture.Container { return fixture.W3(t, true) }, false},
		{"W3-outside", func(t testing.TB) *fixture.Container { return fixture.W3(t, false) }, true},
		{"W4", fixture.W4, false},
		{"W5", fixture.W5, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.make(t)
			if tc.name == "W4" {
				rep := killScenario(t, c, exitOK)
				if rep.Outcome != killer.OutcomeExited || len(abortedDone(rep)) != 0 {
					t.Fatalf("healthy kill: outcome %s, aborted %+v; want exited, nothing aborted", rep.Outcome, rep.Aborted)
				}
			} else {
				var extra []string
				if tc.shared {
					rep := killScenario(t, c, exitFailure)
					i := slices.IndexFunc(rep.Refused, func(a killer.Abort) bool { return a.Conn == c.Conn })
					if rep.Outcome != killer.OutcomeStillStuck || i < 0 || len(abortedDone(rep)) != 0 {
						t.Fatalf("kill of a host-table wedge: outcome %s, refused %+v, aborted %+v; want still-stuck refusing %d",
							rep.Outcome, rep.Refused, rep.Aborted, c.Conn)
					}
					extra = []string{"--verify-only", "--allow-shared-fstype", rep.Refused[i].FSType}
				}
				rep := killScenario(t, c, exitOK, extra...)
				if got := abortedDone(rep); rep.Outcome != killer.OutcomeRecovered || !slices.Equal(got, []fuseconn.ConnID{c.Conn}) {
					t.Fatalf("outcome %s, aborted %v; want recovered aborting exactly %d", rep.Outcome, got, c.Conn)
				}
			}
			select {
			case <-c.Exited():
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: init not reaped after fuseguard kill\n%s", c.Scenario, c.Logs())
			}
			if c.Shared != 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := c.SharedAnswers(ctx); err != nil {
					t.Fatalf("shared connection %d no longer answers: %v", c.Shared, err)
				}
			}
		})
	}
}
