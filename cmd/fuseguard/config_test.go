package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/wrapper"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// writeConfig writes a configuration file into a test directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigCommand: `fuseguard config --config F` prints the file's values,
// the environment's state directory over the file's, and a flag's over
// both; as TOML that reads back, and as JSON.
func TestConfigCommand(t *testing.T) {
	file := writeConfig(t, `state_dir = "/from/file"
[policy]
allow_shared_fstypes = ["fuse.fromfile"]
[watch]
grace = "7s"
max_rescues = 9
[timeouts]
verify = "3s"
`)
	const envStateDir = "/from/env"
	t.Setenv(record.EnvStateDir, envStateDir)
	stdout, stderr, code := fgConfig(t, "--config", file, "--json", "--grace", "1500ms", "--allow-shared-fstype", "fuse.fromflag")
	if code != exitOK {
		t.Fatalf("config --json: exit %d\n%s", code, stderr)
	}
	var got config.Config
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("config --json: %v\n%s", err, stdout)
	}
	want := config.Defaults()
	want.StateDir = envStateDir // the environment beats the file
	want.Policy.AllowSharedFSTypes = []string{"fuse.fromflag"}
	want.Watch.Grace = config.Duration(1500 * time.Millisecond)
	want.Watch.MaxRescues = 9
	want.Timeouts.Verify = config.Duration(3 * time.Second)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config --json =\n%+v\nwant\n%+v", got, want)
	}

	stdout, stderr, code = fgConfig(t, "--config", file, "--grace", "1500ms", "--allow-shared-fstype", "fuse.fromflag")
	if code != exitOK {
		t.Fatalf("config: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, file) {
		t.Errorf("config output does not name the file %s:\n%s", file, stdout)
	}
	back, err := config.Parse([]byte(stdout), "stdout")
	if err != nil {
		t.Fatalf("config output is not a valid configuration: %v\n%s", err, stdout)
	}
	if !reflect.DeepEqual(back, want) {
		t.Errorf("config (TOML) =\n%+v\nwant\n%+v", back, want)
	}
}

// fgConfig runs `fuseguard config args` in the test's environment (fg sets
// a state directory of its own).
func fgConfig(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, fgcmd.Binary(t), append([]string{"config"}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// TestConfigErrors: a bad configuration stops every command with one line
// naming the file and the key; a missing file named explicitly too.
func TestConfigErrors(t *testing.T) {
	unknown := writeConfig(t, "[watch]\ngrace = \"1s\"\ncheck_intervall = \"1s\"\n")
	badValue := writeConfig(t, "[timeouts]\n\nrecover = \"-2s\"\n")
	missing := filepath.Join(t.TempDir(), "missing.toml")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"config", "--config", unknown}, []string{unknown, "unknown key", "watch.check_intervall"}},
		{[]string{"kill", "--config", unknown, "1"}, []string{unknown, "watch.check_intervall"}},
		{[]string{"watch", "--config", badValue}, []string{badValue + ":3", "timeouts.recover", "negative"}},
		{[]string{"status", "--config", missing}, []string{missing, "not found"}},
		{[]string{"config", "--allow-shared-fstype", "sshfs"}, []string{"policy.allow_shared_fstypes", `"sshfs"`}},
	} {
		stdout, stderr, code := fg(t, tc.args...)
		if code != exitUsage {
			t.Errorf("fuseguard %v: exit %d, want %d\n%s%s", tc.args, code, exitUsage, stdout, stderr)
			continue
		}
		if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 {
			t.Errorf("fuseguard %v: %d lines on stderr, want 1:\n%s", tc.args, len(lines), stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("fuseguard %v: stderr %q does not say %q", tc.args, stderr, w)
			}
		}
	}
	// $FUSEGUARD_CONFIG names a file explicitly too.
	t.Setenv(config.EnvPath, missing)
	if _, stderr, code := fg(t, "config"); code != exitUsage || !strings.Contains(stderr, missing) {
		t.Errorf("config with $%s missing: exit %d, %q; want %d naming the file", config.EnvPath, code, stderr, exitUsage)
	}
}

// TestKillConfigPolicy: the abort policy of the node configuration decides
// what `fuseguard kill --config F` may abort on a real wedge in the host's
// mount table (W1 shared: the stuck connection is not the container's
// instance): refused without it, planned with allow_shared_fstypes naming
// its fs type, refused again when a flag overrides the file's list, and
// aborted for real with the file alone.
func TestKillConfigPolicy(t *testing.T) {
	t.Parallel()
	c := fixture.W1(t, true)
	refusedType := func(rep killer.Report) string {
		i := slices.IndexFunc(rep.Refused, func(a killer.Abort) bool { return a.Conn == c.Conn })
		if i < 0 {
			return ""
		}
		return rep.Refused[i].FSType
	}
	planned := func(rep killer.Report) bool {
		return slices.ContainsFunc(rep.Aborted, func(a killer.Abort) bool { return a.Conn == c.Conn && !a.Done })
	}

	rep := killScenario(t, c, exitFailure, "--dry-run")
	fsType := refusedType(rep)
	if fsType == "" || planned(rep) {
		t.Fatalf("kill --dry-run without a policy: refused %+v, planned %+v; want connection %d refused", rep.Refused, rep.Aborted, c.Conn)
	}
	file := writeConfig(t, fmt.Sprintf("[policy]\nallow_shared_fstypes = [%q]\n", fsType))

	rep = killScenario(t, c, exitFailure, "--verify-only", "--dry-run", "--config", file)
	if !planned(rep) || refusedType(rep) != "" {
		t.Fatalf("kill --dry-run --config with allow_shared_fstypes = [%q]: planned %+v, refused %+v; want connection %d planned",
			fsType, rep.Aborted, rep.Refused, c.Conn)
	}
	rep = killScenario(t, c, exitFailure, "--verify-only", "--dry-run", "--config", file, "--allow-shared-fstype", "fuse.other")
	if planned(rep) || refusedType(rep) != fsType {
		t.Fatalf("kill --dry-run --config with the flag overriding the list: planned %+v, refused %+v; want connection %d refused",
			rep.Aborted, rep.Refused, c.Conn)
	}
	killRecovers(t, c, "--verify-only", "--config", file)
}

// TestRuntimeConfig: the runtime wrapper takes the rescue's abort policy
// and timeouts from the node configuration ($FUSEGUARD_CONFIG or
// --fuseguard-config), its own flags overriding the timeouts; its kill's
// bound follows.
func TestRuntimeConfig(t *testing.T) {
	file := writeConfig(t, `state_dir = "/from/file"
[policy]
allow_shared_fstypes = ["fuse.lxcfs"]
abort_shared = true
[timeouts]
verify = "3s"
diagnose = "4s"
recover = "5s"
`)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name       string
		args       []string
		getenv     func(string) string
		wantVerify time.Duration
	}{
		{"flag", []string{"--fuseguard-config", file, "kill", "id", "KILL"}, env(nil), 3 * time.Second},
		{"env", []string{"kill", "id", "KILL"}, env(map[string]string{config.EnvPath: file}), 3 * time.Second},
		{"own flag wins", []string{"--fuseguard-config=" + file, "--fuseguard-verify-timeout", "1s", "kill", "id", "KILL"}, env(nil), time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, rest, err := wrapper.StripFlags(tc.args)
			if err != nil || rest[0] != "kill" {
				t.Fatalf("StripFlags(%v) = %+v, %v, %v", tc.args, f, rest, err)
			}
			c, got, err := runtimeConfig(f, tc.getenv)
			if err != nil || got != file || c.StateDir != "/from/file" {
				t.Fatalf("runtimeConfig = %+v, %q, %v; want the file's", c, got, err)
			}
			w := runtimeWrapper(c)
			wantPolicy := killer.Policy{AllowSharedFSTypes: []string{"fuse.lxcfs"}, AbortShared: true}
			if !reflect.DeepEqual(w.Policy, wantPolicy) {
				t.Errorf("wrapper policy = %+v, want %+v", w.Policy, wantPolicy)
			}
			if w.VerifyTimeout != tc.wantVerify || w.DiagnoseTimeout != 4*time.Second || w.RecoverTimeout != 5*time.Second {
				t.Errorf("wrapper timeouts = %v, %v, %v; want %v, 4s, 5s", w.VerifyTimeout, w.DiagnoseTimeout, w.RecoverTimeout, tc.wantVerify)
			}
			defaults := runtimeWrapper(config.Defaults())
			if d := w.KillBound() - defaults.KillBound(); d != (tc.wantVerify-2*time.Second)+(4-2)*time.Second+(5-2)*time.Second {
				t.Errorf("KillBound grew by %v over the defaults'; want the configured timeouts' excess", d)
			}
		})
	}
	// Fail open: a missing file means the defaults, the environment and
	// the wrapper's flags, with the error to log.
	missing := filepath.Join(t.TempDir(), "missing.toml")
	c, got, err := runtimeConfig(wrapper.Flags{Config: missing, VerifyTimeout: time.Second}, env(map[string]string{record.EnvStateDir: "/from/env"}))
	want := config.Defaults()
	want.StateDir = "/from/env"
	want.Timeouts.Verify = config.Duration(time.Second)
	if !errors.Is(err, config.ErrNotFound) || got != missing || !reflect.DeepEqual(c, want) {
		t.Errorf("runtimeConfig with a missing --fuseguard-config = %+v, %q, %v; want the defaults, env and flags, the file and ErrNotFound", c, got, err)
	}
}

// TestKillConfigPolicyW5: a node configuration allowing the shared
// lxcfs-like mount's fs type (W5) widens nothing by itself: the idle shared
// connection, which no stuck task waits on, is neither planned nor
// aborted; only the container's own wedged connection is, and the shared
// mount keeps serving.
func TestKillConfigPolicyW5(t *testing.T) {
	t.Parallel()
	c := fixture.W5(t)
	fsType, err := c.SharedFSType()
	if err != nil {
		t.Fatal(err)
	}
	file := writeConfig(t, fmt.Sprintf("[policy]\nallow_shared_fstypes = [%q]\n", fsType))
	rep := killScenario(t, c, exitFailure, "--dry-run", "--config", file)
	var planned []fuseconn.ConnID
	for _, a := range rep.Aborted {
		planned = append(planned, a.Conn)
	}
	if !slices.Equal(planned, []fuseconn.ConnID{c.Conn}) || len(abortedDone(rep)) != 0 {
		t.Fatalf("kill --dry-run --config allowing %s: planned %v (done %v), want exactly the container's %d (shared %d idle)",
			fsType, planned, abortedDone(rep), c.Conn, c.Shared)
	}
	killRecovers(t, c, "--verify-only", "--config", file)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SharedAnswers(ctx); err != nil {
		t.Fatalf("shared connection %d no longer answers: %v", c.Shared, err)
	}
}

// killRecovers runs `fuseguard kill` with args on c and requires the
// rescue to abort exactly c's connection and init to be reaped.
func killRecovers(t *testing.T, c *fixture.Container, args ...string) {
	t.Helper()
	rep := killScenario(t, c, exitOK, args...)
	if got := abortedDone(rep); rep.Outcome != killer.OutcomeRecovered || !slices.Equal(got, []fuseconn.ConnID{c.Conn}) {
		t.Fatalf("kill %v: outcome %s, aborted %v; want recovered aborting exactly %d", args, rep.Outcome, got, c.Conn)
	}
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatalf("init not reaped after fuseguard kill\n%s", c.Logs())
	}
}

// TestRuntimeKillConfigPolicy: the runtime wrapper's rescue after a
// runtime's kill (the `docker kill` path) takes its abort policy from the
// node configuration. On a real wedge in the host's mount table (W1
// shared), `fuseguard-runtime kill` without a policy refuses the
// connection and init stays stuck; with --fuseguard-config allowing its fs
// type, the next kill aborts exactly that connection and init is reaped.
// The real runtime is a script that SIGKILLs the container's init, as runc
// would: only its signal matters here.
func TestRuntimeKillConfigPolicy(t *testing.T) {
	t.Parallel()
	c := fixture.W1(t, true)
	stateDir := testenv.StateDir(t)
	rec, err := record.NewRecord(proc.NewFS(""), "w1shared", c.InitPID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := (record.Store{Dir: stateDir}).Save(rec); err != nil {
		t.Fatal(err)
	}
	runtime := filepath.Join(t.TempDir(), "runtime")
	if err := os.WriteFile(runtime, []byte(fmt.Sprintf("#!/bin/sh\nexec kill -KILL %d\n", c.InitPID)), 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(stateDir, "runtime.log")
	wrapperKill := func(conf string) killer.Report {
		t.Helper()
		// The log of this kill only.
		_ = os.Remove(logPath)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, fgcmd.Runtime(t), "--fuseguard-runtime", runtime, "--fuseguard-config", conf,
			"--fuseguard-verify-timeout", "1s", "kill", rec.ID, "KILL")
		cmd.Env = append(os.Environ(), "FUSEGUARD_STATE_DIR=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fuseguard-runtime kill: %v\n%s", err, out)
		}
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e struct {
				Outcome killer.Outcome `json:"outcome"`
				Aborted []killer.Abort `json:"aborted"`
				Refused []killer.Abort `json:"refused"`
			}
			if json.Unmarshal([]byte(line), &e) == nil && e.Outcome != "" {
				return killer.Report{Outcome: e.Outcome, Aborted: e.Aborted, Refused: e.Refused}
			}
		}
		t.Fatalf("no rescue outcome in runtime.log:\n%s", b)
		return killer.Report{}
	}

	rep := wrapperKill(writeConfig(t, fmt.Sprintf("state_dir = %q\n", stateDir)))
	i := slices.IndexFunc(rep.Refused, func(a killer.Abort) bool { return a.Conn == c.Conn })
	if rep.Outcome != killer.OutcomeStillStuck || i < 0 || len(abortedDone(rep)) != 0 {
		t.Fatalf("wrapper kill without a policy: outcome %s, refused %+v, aborted %+v; want still-stuck refusing %d", rep.Outcome, rep.Refused, rep.Aborted, c.Conn)
	}
	allow := writeConfig(t, fmt.Sprintf("state_dir = %q\n[policy]\nallow_shared_fstypes = [%q]\n", stateDir, rep.Refused[i].FSType))
	rep = wrapperKill(allow)
	if got := abortedDone(rep); rep.Outcome != killer.OutcomeRecovered || !slices.Equal(got, []fuseconn.ConnID{c.Conn}) {
		t.Fatalf("wrapper kill with allow_shared_fstypes = [%q]: outcome %s, aborted %+v; want recovered aborting exactly %d",
			rep.Refused[i].FSType, rep.Outcome, rep.Aborted, c.Conn)
	}
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatalf("init not reaped after the wrapper's rescue\n%s", c.Logs())
	}
}
