package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/fuseguard"
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
	want := []string{config.EnvPath + "=" + filepath.Join(dir, "fg.toml"), fuseguard.EnvStateDir + "=" + stateDir}
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
