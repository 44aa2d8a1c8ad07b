package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/wrapper"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestDockerKillDirect: a healthy container's `docker kill` is sent by the
// wrapper itself through init's pidfd, with no runc kill process; a paused
// container's goes to runc (the cgroup v1 freezer holds a killed task
// until the caller thaws it) and is not held by a verification the freezer
// would stall. The runtime below the wrapper is runc behind a script that
// logs each command line, so the test sees which runc commands ran.
func TestDockerKillDirect(t *testing.T) {
	testenv.RequireLong(t)
	runc := testenv.RequireBinary(t, "runc")
	argvLog := filepath.Join(t.TempDir(), "runc-argv")
	stateDir := testenv.StateDir(t)
	rt := fgcmd.RuntimeScript(t, stateDir, wrapper.EnvRuntime+"="+argvLoggingRuntime(t, runc, argvLog))
	d, image := startDaemon(t, map[string]string{"fuseguard": rt})
	runtimeLog := filepath.Join(stateDir, "runtime.log")

	// run starts a container that sleeps, and returns its id.
	run := func(t *testing.T, ctx context.Context) string {
		t.Helper()
		id, err := d.RunDetached(ctx, image, "fuseguard", nil, "sleep", "1000")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// killed kills id through docker and asserts it exited 137; it returns
	// the runc commands run for id and the wrapper's log lines about it.
	killed := func(t *testing.T, ctx context.Context, id string) (runcCommands, logLines []string) {
		t.Helper()
		if err := d.Kill(ctx, id); err != nil {
			t.Fatalf("docker kill: %v\nruntime.log:\n%s", err, strings.Join(fgcmd.LogLines(runtimeLog, id), "\n"))
		}
		st, err := d.WaitExited(ctx, id)
		if err != nil || st.ExitCode != 137 {
			t.Fatalf("after docker kill: %+v %v, want exited 137", st, err)
		}
		if err := d.Rm(ctx, id, false); err != nil {
			t.Fatal(err)
		}
		cmds := runcCommandsFor(t, argvLog, id)
		t.Logf("runc commands for %.12s: %v", id, cmds)
		return cmds, fgcmd.LogLines(runtimeLog, id)
	}

	t.Run("healthy", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		id := run(t, ctx)
		cmds, lines := killed(t, ctx, id)
		if slices.Contains(cmds, "kill") {
			t.Errorf("runc kill ran for a healthy container (commands %v): the wrapper should signal init itself", cmds)
		}
		if !slices.Contains(cmds, "delete") {
			t.Errorf("runc commands %v: no delete, so the log of commands is not what the test thinks", cmds)
		}
		if !slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, `"outcome":"exited"`) && strings.Contains(l, `"command":"kill"`)
		}) {
			t.Errorf("runtime.log: no kill with outcome exited:\n%s", strings.Join(lines, "\n"))
		}
	})

	t.Run("paused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		id := run(t, ctx)
		if _, stderr, err := d.Docker(ctx, "pause", id); err != nil {
			t.Fatalf("docker pause: %v %s", err, stderr)
		}
		cmds, lines := killed(t, ctx, id)
		if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "rescue failed") }) {
			t.Errorf("runtime.log: a rescue of a merely frozen container:\n%s", strings.Join(lines, "\n"))
		}
		if _, err := os.Stat("/sys/fs/cgroup/freezer"); err != nil {
			// cgroup v2: a fatal signal ends a frozen task, so the
			// wrapper's own kill serves.
			if slices.Contains(cmds, "kill") {
				t.Errorf("runc kill ran for a container frozen by cgroup v2 (commands %v)", cmds)
			}
			return
		}
		if !slices.Contains(cmds, "kill") {
			t.Errorf("runc commands %v: the kill of a container frozen by the v1 freezer must be runc's", cmds)
		}
	})
}

// argvLoggingRuntime writes a runtime script that appends its command line
// to logPath and execs runc with it.
func argvLoggingRuntime(t *testing.T, runc, logPath string) string {
	t.Helper()
	sh := testenv.RequireBinary(t, "sh")
	script := filepath.Join(t.TempDir(), "runc-logging")
	body := fmt.Sprintf("#!%s\necho \"$*\" >> %s\nexec %s \"$@\"\n", sh, logPath, runc)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// runcCommandsFor returns, in order, the runc subcommands the log of
// command lines holds for container id (found as the subcommand's word
// before the id, after runc's global flags).
func runcCommandsFor(t *testing.T, logPath, id string) []string {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if !slices.Contains(f, id) {
			continue
		}
		for _, c := range []string{"create", "start", "kill", "delete", "state"} {
			if slices.Contains(f, c) {
				cmds = append(cmds, c)
				break
			}
		}
	}
	return cmds
}
