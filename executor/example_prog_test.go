package executor_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/gobuild"
)

// testExampleProgram builds examples/titus-shutdown and shuts a wedged W2
// task down with it: SIGTERM leaves init stuck in zap_pid_ns_processes,
// the grace runs out, and the kill rescues it.
func testExampleProgram(t *testing.T, e *env) {
	bin := gobuild.Binary(t, "github.com/fuseguard/fuseguard/examples/titus-shutdown")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := e.w2(t)
	const grace = time.Second
	cmd := exec.CommandContext(ctx, bin, "-host", e.d.Host(), "-id", c.id[:12], "-grace", grace.String(), "-state-dir", e.store.Dir)
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(begin)
	t.Logf("titus-shutdown ran %v: %v\n%s", took.Round(time.Millisecond), err, out)
	if err != nil {
		t.Fatalf("titus-shutdown: %v", err)
	}
	for _, want := range []string{"grace", "pidfd_kill", "outcome recovered (docker confirmed: true)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if st, err := e.d.Inspect(ctx, c.id); err != nil || st.Running {
		t.Errorf("Docker after titus-shutdown: %+v, %v", st, err)
	}
}
