package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestRuntimeForwardsConfig: the runtime wrapper given a configuration file
// (--fuseguard-config) passes it, absolute, and its state directory to the
// hooks it injects, which runc runs with no other environment.
func TestRuntimeForwardsConfig(t *testing.T) {
	bin := fgcmd.Binary(t)
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stateDir := testenv.StateDir(t)
	if err := os.WriteFile(filepath.Join(dir, "fg.toml"), []byte("state_dir = \""+stateDir+"\"\n[policy]\nabort_shared = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"ociVersion":"1.0.2"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A relative path, from dir: the hooks run elsewhere.
	cmd := exec.Command(bin, "runtime", "--fuseguard-runtime", truePath, "--fuseguard-config", "fg.toml", "create", "--bundle", bundle, "fc")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FUSEGUARD_STATE_DIR=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runtime create: %v\n%s", err, out)
	}
	want := []string{config.EnvPath + "=" + filepath.Join(dir, "fg.toml"), record.EnvStateDir + "=" + stateDir}
	for stage, envs := range injectedHookEnvs(t, bundle) {
		for _, env := range envs {
			for _, w := range want {
				if !slices.Contains(env, w) {
					t.Errorf("%s hook env %q lacks %q", stage, env, w)
				}
			}
		}
	}
}

// TestHookBadConfig: a hook whose node configuration is broken fails open
// (one line on stderr and in hook.log, then its work with the defaults,
// exit 0), or exits 1
// when fail-closed.
func TestHookBadConfig(t *testing.T) {
	bin := fgcmd.Binary(t)
	bad := filepath.Join(t.TempDir(), "fg.toml")
	if err := os.WriteFile(bad, []byte("[watch]\ngrace = \"soon\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const want = "watch.grace"
	dir := testenv.StateDir(t)
	env := []string{record.EnvStateDir + "=" + dir, config.EnvPath + "=" + bad}
	r := run(t, 10*time.Second, env, stdinFile(t, hookState("bad-config", "stopped", 1)), bin, "hook", "poststop")
	if r.code != 0 {
		t.Errorf("fail open: exit %d, want 0 (stderr %q)", r.code, r.stderr)
	}
	// The error, then the hook's work done with the defaults.
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 2 || !strings.Contains(lines[0], want) || !strings.Contains(lines[1], "hook done") {
		t.Errorf("fail open: stderr %q, want the error naming %s, then hook done", r.stderr, want)
	}
	if log := mustRead(filepath.Join(dir, "hook.log")); !strings.Contains(log, want) || !strings.Contains(log, bad) {
		t.Errorf("hook.log %q does not name %s and %s", log, bad, want)
	}
	r = run(t, 10*time.Second, append(env, "FUSEGUARD_FAIL_CLOSED=1"), stdinFile(t, hookState("bad-config", "stopped", 1)), bin, "hook", "poststop")
	if r.code != 1 {
		t.Errorf("fail-closed: exit %d, want 1 (stderr %q)", r.code, r.stderr)
	}
	oneLine(t, r.stderr, want)
}
