package e2e_test

import (
	"strings"
	"testing"
	"time"

	"path/filepath"

	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/gobuild"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestRuncWrapperKillWithoutPidfd: where pidfd_open fails (Linux before
// 5.3; a seccomp filter here, test/cmd/nopidfd), the wrapper's kill of a
// container it recorded leaves the SIGKILL to the real runtime: runc kills
// it, the wrapper exits with runc's status, and runtime.log says why
// fuseguard could not verify the exit.
func TestRuncWrapperKillWithoutPidfd(t *testing.T) {
	nopidfd := gobuild.Binary(t, "github.com/fuseguard/fuseguard/test/cmd/nopidfd")
	b := newRuncBundle(t, testenv.RequireBinary(t, "runc"), "/bin/sleep", "1000")
	t.Cleanup(func() { b.destroy(t) })
	b.startThroughWrapper(t)
	if st, ok := b.state(t); !ok || st.Status != "running" {
		t.Fatalf("runc state after run: %+v %v, want running", st, ok)
	}
	argv := []string{nopidfd, fgcmd.Binary(t), "runtime", "--fuseguard-runtime=" + b.runc, "--fuseguard-state-dir", b.stateDir, "--root", b.root, "kill", b.id, "KILL"}
	r := run(t, 30*time.Second, nil, nil, argv...)
	if r.code != 0 {
		t.Fatalf("runtime kill without pidfd_open: exit %d: %s", r.code, r.stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, ok := b.state(t)
		if !ok || st.Status == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runc state %+v 10 s after the kill: want stopped", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := fgcmd.LogLines(filepath.Join(b.stateDir, "runtime.log"), b.id)
	// One kill, one verdict: the wrapper's own attempt, which could not
	// signal, is not logged as a failed rescue beside the verification's.
	var failed []string
	for _, l := range lines {
		if strings.Contains(l, `"msg":"rescue failed"`) {
			failed = append(failed, l)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], killer.ErrNoPidfd.Error()) {
		t.Errorf("runtime.log: want exactly one failed rescue naming %q:\n%s", killer.ErrNoPidfd, strings.Join(lines, "\n"))
	}
}
