package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/test/fixture"
)

// TestKillRefusesSSHFS: `fuseguard kill` on a container wedged at exit on
// its own mount (W3, daemon inside) while a real sshfs mount of the host,
// bound into the container, has a host reader waiting (sshfs stopped). With
// --allow-shared-fstype for its fs type a dry run plans the sshfs
// connection; without, the kill aborts the container's connection only and
// says it keeps the sshfs one, naming its fs type. Resumed, sshfs answers
// the host reader and keeps serving.
func TestKillRefusesSSHFS(t *testing.T) {
	t.Parallel()
	c := fixture.W3(t, true)
	tp := fixture.SSHFS(t)
	bound := c.BindHost(tp.Dir)
	tp.Stop()
	reader := tp.StartReader()
	pid := fmt.Sprint(c.InitPID)

	stdout, stderr, code := fg(t, "kill", "--json", "--dry-run", "--allow-shared-fstype", tp.FSType,
		"--verify-timeout", "1s", "--recover-timeout", "1s", pid)
	var rep killer.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("kill --dry-run (exit %d): --json output: %v\n%s\n%s", code, err, stdout, stderr)
	}
	if code != exitFailure || rep.Outcome != killer.OutcomeStillStuck {
		t.Fatalf("kill --dry-run: exit %d, outcome %s; want %d, %s\n%s", code, rep.Outcome, exitFailure, killer.OutcomeStillStuck, stderr)
	}
	if !slices.ContainsFunc(rep.Aborted, func(a killer.Abort) bool {
		return a.Conn == tp.Conn && !a.Done && !a.Owned && a.FSType == tp.FSType && a.MountPoint == bound
	}) {
		t.Fatalf("kill --dry-run --allow-shared-fstype %s planned %+v, want connection %d at %s", tp.FSType, rep.Aborted, tp.Conn, bound)
	}

	stdout, stderr, code = fg(t, "kill", "--verify-only", "--verify-timeout", "1s", pid)
	t.Logf("kill (exit %d):\n%s\n%s", code, stdout, stderr)
	if code != exitOK {
		t.Fatalf("kill: exit %d, want %d", code, exitOK)
	}
	for _, want := range []string{
		fmt.Sprintf("connection %d aborted", c.Conn),
		fmt.Sprintf("kill would keep connection %d (%s at %s): ", tp.Conn, tp.FSType, bound),
		fmt.Sprintf("shared with the host (%s), kept: allow with --allow-shared-fstype=%s", tp.FSType, tp.FSType),
		"outcome recovered",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("kill output lacks %q", want)
		}
	}
	if strings.Contains(stdout, fmt.Sprintf("connection %d aborted", tp.Conn)) {
		t.Errorf("kill aborted the sshfs connection %d", tp.Conn)
	}
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("init not reaped after fuseguard kill")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.ResumeIntact(ctx, reader); err != nil {
		t.Fatal(err)
	}
}
