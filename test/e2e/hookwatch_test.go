package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fgwatch"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// hookState is the OCI State of a "container" whose init is pid.
func hookState(id, status string, pid int) []byte {
	b, _ := json.Marshal(map[string]any{"ociVersion": "1.0.2", "id": id, "status": status, "pid": pid, "bundle": "/"})
	return b
}

// sleeper is a live process standing in for a container's init.
func sleeper(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

// TestHookStartsWatcher: `fuseguard hook createRuntime`, and the lean
// `fuseguard-runtime hook createRuntime`, start one
// detached watcher on its state directory when none runs, poststart finds
// it, and a descriptor the runtime leaked into the hook (fd 3, a pipe) is
// not kept open by it.
func TestHookStartsWatcher(t *testing.T) {
	// The full binary's hook (podman's and CRI-O's hooks.d) and the lean
	// one the wrapper injects, which starts the full binary beside it.
	for _, hookBin := range []string{fgcmd.Binary(t), fgcmd.Runtime(t)} {
		t.Run(filepath.Base(hookBin), func(t *testing.T) {
			dir := testenv.StateDir(t)
			t.Cleanup(func() { fgwatch.StopWatcher(t, dir) })
			pid := sleeper(t)

			// A pipe without O_CLOEXEC in the hook, as a runtime could leave one:
			// its reader sees EOF only once every copy of the write end is closed.
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := execCmd(ctx, hookBin, "hook", "createRuntime")
			// "FUSEGUARD_WATCHER=" overrides TestMain's 0: the default is under test.
			cmd.Env = append(os.Environ(), record.EnvStateDir+"="+dir, "FUSEGUARD_WATCHER=")
			cmd.Stdin = strings.NewReader(string(hookState("hw", "creating", pid)))
			cmd.ExtraFiles = []*os.File{w}
			out, err := cmd.CombinedOutput() // pipes: a watcher holding them would hang this
			w.Close()
			if err != nil || strings.Contains(string(out), `"error"`) {
				t.Fatalf("hook createRuntime: %v\n%s", err, out)
			}
			wpid := hookWatcher(t, dir)
			assertDetached(t, wpid, dir)
			eof := make(chan error, 1)
			go func() { _, err := io.ReadAll(r); eof <- err }()
			select {
			case err := <-eof:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the runtime's pipe is still open after the hook exited: watcher %d holds it", wpid)
			}
			lines := fgcmd.LogLines(filepath.Join(dir, "hook.log"), "hw")
			done := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.Contains(l, `"msg":"hook done"`) })
			if len(done) != 1 {
				t.Errorf("hook.log: %q, want one hook done", lines)
			}
			if !strings.Contains(mustRead(filepath.Join(dir, "hook.log")), `"msg":"started the node watcher"`) {
				t.Errorf("hook.log does not say it started the watcher:\n%s", mustRead(filepath.Join(dir, "hook.log")))
			}

			r2 := run(t, 10*time.Second, []string{record.EnvStateDir + "=" + dir, "FUSEGUARD_WATCHER="},
				stdinFile(t, hookState("hw", "running", pid)), hookBin, "hook", "poststart")
			if r2.code != 0 {
				t.Fatalf("poststart: exit %d %s", r2.code, r2.stderr)
			}
			if again := hookWatcher(t, dir); again != wpid {
				t.Fatalf("poststart: watcher %d, want the running %d", again, wpid)
			}
			// The watcher tracks what the hook recorded.
			waitFile(t, filepath.Join(dir, watch.LogName), `"msg":"tracking container"`, 5*time.Second)
		})
	}
}

// TestHookWatcherOff: --no-watcher, FUSEGUARD_WATCHER=0 or false, and the
// poststop stage start no watcher; the record is written all the same.
func TestHookWatcherOff(t *testing.T) {
	bin := fgcmd.Binary(t)
	pid := sleeper(t)
	for _, tc := range []struct {
		name, stage string
		env         []string
		flags       []string
	}{
		{"flag", "createRuntime", []string{"FUSEGUARD_WATCHER="}, []string{"--no-watcher"}},
		{"env-0", "createRuntime", []string{"FUSEGUARD_WATCHER=0"}, nil},
		{"env-false", "poststart", []string{"FUSEGUARD_WATCHER=false"}, nil},
		{"poststop", "poststop", []string{"FUSEGUARD_WATCHER="}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.StateDir(t)
			t.Cleanup(func() { fgwatch.StopWatcher(t, dir) })
			argv := append(append([]string{bin, "hook"}, tc.flags...), tc.stage)
			r := run(t, 10*time.Second, append(tc.env, record.EnvStateDir+"="+dir), stdinFile(t, hookState("off", "running", pid)), argv...)
			if r.code != 0 || strings.Contains(r.stderr, `"error"`) {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, watch.LockName)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a watcher was started (lock file: %v)", err)
			}
			_, err := record.Store{Dir: dir}.Load("off")
			if recorded := err == nil; recorded != (tc.stage != "poststop") {
				t.Fatalf("record after %s: %v", tc.stage, err)
			}
		})
	}
}

// TestRuntimeForwardsWatcherEnv: the wrapper passes FUSEGUARD_WATCHER to
// the hooks it injects (runc gives a hook only its own env), and nothing
// when it is unset.
func TestRuntimeForwardsWatcherEnv(t *testing.T) {
	bin := fgcmd.Binary(t)
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	for _, val := range []string{"0", ""} {
		bundle := t.TempDir()
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"ociVersion":"1.0.2"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		r := run(t, 10*time.Second, []string{"FUSEGUARD_WATCHER=" + val}, nil,
			bin, "runtime", "--fuseguard-runtime", truePath, "--fuseguard-state-dir", testenv.StateDir(t), "create", "--bundle", bundle, "fw")
		if r.code != 0 {
			t.Fatalf("runtime create: exit %d %s", r.code, r.stderr)
		}
		for stage, envs := range injectedHookEnvs(t, bundle) {
			for _, env := range envs {
				has := slices.Contains(env, "FUSEGUARD_WATCHER=0")
				if has != (val == "0") || slices.ContainsFunc(env, func(kv string) bool { return kv == "FUSEGUARD_WATCHER=" }) {
					t.Errorf("FUSEGUARD_WATCHER=%q: %s hook env %q", val, stage, env)
				}
			}
		}
	}
}

// injectedHookEnvs returns, by stage, the env of every hook in the bundle's
// config.json; it fails t when there is none.
func injectedHookEnvs(t *testing.T, bundle string) map[string][][]string {
	t.Helper()
	var conf struct {
		Hooks map[string][]struct{ Env []string }
	}
	if err := json.Unmarshal([]byte(mustRead(filepath.Join(bundle, "config.json"))), &conf); err != nil {
		t.Fatal(err)
	}
	if len(conf.Hooks) == 0 {
		t.Fatalf("no hooks injected: %s", mustRead(filepath.Join(bundle, "config.json")))
	}
	envs := map[string][][]string{}
	for stage, hooks := range conf.Hooks {
		for _, h := range hooks {
			envs[stage] = append(envs[stage], h.Env)
		}
	}
	return envs
}
