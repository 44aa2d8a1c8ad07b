package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/gobuild"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestWithoutPidfd runs fuseguard where pidfd_open fails with ENOSYS, as on
// Linux before 5.3 (a seccomp filter: test/cmd/nopidfd). `fuseguard kill`
// of a container's init refuses with ErrNoPidfd's words and never falls
// back to kill(2) by pid: the init lives on. `fuseguard doctor` fails its pidfd check and says
// what to do.
func TestWithoutPidfd(t *testing.T) {
	t.Parallel()
	nopidfd := gobuild.Binary(t, "github.com/fuseguard/fuseguard/test/cmd/nopidfd")
	env := []string{"FUSEGUARD_STATE_DIR=" + testenv.StateDir(t)}

	c := fixture.Idle(t, 1)
	pid := c.InitPID
	stdout, stderr, code := fgcmd.Run(t, nopidfd, env, fgcmd.Binary(t), "kill", strconv.Itoa(pid))
	if code == exitOK || !strings.Contains(stderr, killer.ErrNoPidfd.Error()) {
		t.Errorf("kill without pidfd_open: exit %d, stderr %q; want a failure naming %q\n%s", code, stderr, killer.ErrNoPidfd, stdout)
	}
	select {
	case <-c.Exited():
		t.Errorf("the target %d exited: kill fell back to signalling it by pid", pid)
	default:
	}
	stdout, stderr, code = fgcmd.Run(t, nopidfd, env, fgcmd.Binary(t), "doctor")
	line := ""
	for l := range strings.SplitSeq(stdout, "\n") {
		if strings.Contains(l, "pidfd") {
			line = l
			break
		}
	}
	if code == exitOK || !strings.Contains(line, killer.ErrNoPidfd.Error()) {
		t.Errorf("doctor without pidfd_open: exit %d, pidfd line %q; want a failure naming %q\n%s\n%s", code, line, killer.ErrNoPidfd, stdout, stderr)
	}
	// The same doctor with pidfd_open: its pidfd check passes (so the
	// failure above is the filter's doing).
	stdout, _, _ = fgcmd.Run(t, fgcmd.Binary(t), env, "doctor")
	if strings.Contains(stdout, killer.ErrNoPidfd.Error()) {
		t.Errorf("doctor says pidfd is missing without the filter:\n%s", stdout)
	}
}
