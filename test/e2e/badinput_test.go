package e2e_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// stdinFile writes data to a file to serve as a command's stdin.
func stdinFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// oneLine checks that s is exactly one line containing want.
func oneLine(t *testing.T, s, want string) {
	t.Helper()
	s = strings.TrimRight(s, "\n")
	if strings.Count(s, "\n") != 0 || !strings.Contains(s, want) {
		t.Errorf("stderr %q: want one line containing %q", s, want)
	}
}

// TestHookBadInput feeds the hook broken States: each is one clear line
// on stderr and in hook.log, exit 0 (fail open) or 1 when fail-closed, and
// no record is written.
func TestHookBadInput(t *testing.T) {
	bin := fgcmd.Binary(t)
	valid := func(pid int) []byte {
		b, _ := json.Marshal(map[string]any{"ociVersion": "1.0.2", "id": "bad-input", "status": "creating", "pid": pid, "bundle": "/tmp/b"})
		return b
	}
	for _, tc := range []struct {
		name, stage string
		stdin       []byte
		want        string
	}{
		{"empty", "createRuntime", nil, "empty input"},
		{"truncated", "createRuntime", valid(1)[:20], "invalid oci state"},
		{"oversized", "poststart", []byte(`{"id":"` + strings.Repeat("a", 2<<20) + `"}`), "larger than 1 MiB"},
		{"not-json", "createRuntime", []byte("hello"), "not a JSON object"},
		{"null", "createRuntime", []byte("null"), "not a JSON object"},
		{"missing-pid", "createRuntime", []byte(`{"ociVersion":"1.0.2","id":"bad-input","status":"creating","bundle":"/tmp/b"}`), "pid 0"},
		{"zero-pid", "poststart", valid(0), "pid 0"},
		{"no-such-pid", "createRuntime", valid(1 << 22), "bad-input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.StateDir(t)
			env := []string{record.EnvStateDir + "=" + dir}
			r := run(t, 10*time.Second, env, stdinFile(t, tc.stdin), bin, "hook", tc.stage)
			if r.code != 0 {
				t.Errorf("fail open: exit %d, want 0 (stderr %q)", r.code, r.stderr)
			}
			oneLine(t, r.stderr, tc.want)
			if log := mustRead(filepath.Join(dir, "hook.log")); !strings.Contains(log, tc.want) {
				t.Errorf("hook.log %q lacks %q", log, tc.want)
			}
			if recs, err := (record.Store{Dir: dir}).List(); err != nil || len(recs) != 0 {
				t.Errorf("records after bad input: %v %v", recs, err)
			}
			for _, closed := range [][]string{{record.EnvStateDir + "=" + dir, "FUSEGUARD_FAIL_CLOSED=1"}, env} {
				args := []string{bin, "hook", tc.stage}
				if len(closed) == 1 {
					args = []string{bin, "hook", "--fail-closed", tc.stage}
				}
				r := run(t, 10*time.Second, closed, stdinFile(t, tc.stdin), args...)
				if r.code != 1 {
					t.Errorf("fail-closed %v: exit %d, want 1", args, r.code)
				}
				oneLine(t, r.stderr, tc.want)
			}
		})
	}

	t.Run("unknown-stage", func(t *testing.T) {
		r := run(t, 10*time.Second, []string{record.EnvStateDir + "=" + testenv.StateDir(t)}, stdinFile(t, valid(1)), bin, "hook", "prestart")
		if r.code != 2 {
			t.Errorf("exit %d, want 2 (usage)", r.code)
		}
		oneLine(t, r.stderr, `unknown hook stage: "prestart"`)
	})
}

// TestHookLifecycle records this test's own process (a live pid) through
// the binary, refreshes it, and removes it at poststop.
func TestHookLifecycle(t *testing.T) {
	testenv.RequireRoot(t)
	bin := fgcmd.Binary(t)
	dir := testenv.StateDir(t)
	env := []string{record.EnvStateDir + "=" + dir, "TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	state := func(status string, pid int) []byte {
		b, _ := json.Marshal(map[string]any{"ociVersion": "1.0.2", "id": "life", "status": status, "pid": pid, "bundle": dir, "future": 1})
		return b
	}
	pid := os.Getpid()
	for _, step := range []struct{ stage, status string }{{"createRuntime", "creating"}, {"poststart", "running"}} {
		if r := run(t, 10*time.Second, env, stdinFile(t, state(step.status, pid)), bin, "hook", step.stage); r.code != 0 || strings.Contains(r.stderr, `"error"`) {
			t.Fatalf("%s: exit %d %s", step.stage, r.code, r.stderr)
		}
		rec, err := record.Store{Dir: dir}.Load("life")
		if err != nil {
			t.Fatal(err)
		}
		if rec.InitPID != pid || rec.InitStartTime == 0 || rec.Bundle != dir || rec.TraceParent == "" || rec.PidNS == 0 {
			t.Fatalf("%s: record %+v", step.stage, rec)
		}
	}
	if r := run(t, 10*time.Second, env, stdinFile(t, state("stopped", 0)), bin, "hook", "poststop"); r.code != 0 {
		t.Fatalf("poststop: exit %d %s", r.code, r.stderr)
	}
	if _, err := (record.Store{Dir: dir}).Load("life"); !errors.Is(err, record.ErrNoRecord) {
		t.Fatalf("record after poststop: %v", err)
	}
	lines := fgcmd.LogLines(filepath.Join(dir, "hook.log"), "life")
	for _, stage := range []string{"createRuntime", "poststart", "poststop"} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, `"stage":"`+stage+`"`) }) {
			t.Errorf("hook.log: no %s line for life", stage)
		}
	}
	if len(lines) != 3 {
		t.Errorf("hook.log lines for life: %d, want 3 (createRuntime, poststart, poststop):\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// noTime drops runc's log timestamps, so two runs compare equal.
func noTime(s string) string { return timeField.ReplaceAllString(s, "") }

var timeField = regexp.MustCompile(`time="[^"]*" `)

// TestRuntimeBadInput: the wrapper's own errors are one line with the
// right exit code; a bundle it cannot patch still reaches the real
// runtime (fail open), whose exit code is passed on. What reaches a real
// runc runs against each of them.
func TestRuntimeBadInput(t *testing.T) {
	bin, wrapper := fgcmd.Binary(t), fgcmd.Runtime(t)
	env := []string{record.EnvStateDir + "=" + testenv.StateDir(t)}
	for _, tc := range []badRuntimeCase{
		{"runtime-missing", []string{bin, "runtime", "--fuseguard-runtime", "/nonexistent/runc", "list"}, nil, 1, `real runtime "/nonexistent/runc"`},
		{"runtime-missing-env", []string{bin, "runtime", "list"}, []string{"FUSEGUARD_RUNTIME=no-such-runtime-xyz"}, 1, `real runtime "no-such-runtime-xyz"`},
		{"runtime-is-self", []string{wrapper, "--fuseguard-runtime=" + bin, "list"}, nil, 2, "real runtime is fuseguard itself"},
		{"unknown-flag", []string{wrapper, "--fuseguard-bogus=1", "list"}, nil, 2, "unknown flag --fuseguard-bogus"},
		{"flag-without-value", []string{bin, "runtime", "--fuseguard-state-dir"}, nil, 2, "needs a value"},
		{"bad-timeout", []string{bin, "runtime", "--fuseguard-verify-timeout=-1s", "list"}, nil, 2, "positive duration"},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, env) })
	}
	testenv.ForEachRunc(t, testRuntimeBadInput)
}

// badRuntimeCase is one wrapper command line whose stderr is one line.
type badRuntimeCase struct {
	name string
	argv []string
	env  []string
	code int
	want string
}

func (tc badRuntimeCase) check(t *testing.T, env []string) {
	t.Helper()
	r := run(t, 10*time.Second, append(env, tc.env...), nil, tc.argv...)
	if r.code != tc.code {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
	}
	oneLine(t, r.stderr, tc.want)
}

func testRuntimeBadInput(t *testing.T, runc string) {
	bin, wrapper := fgcmd.Binary(t), fgcmd.Runtime(t)
	dir := testenv.StateDir(t)
	env := []string{record.EnvStateDir + "=" + dir}
	badConfig := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(badConfig, []byte("[policy]\nabort_shard = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withRunc := "--fuseguard-runtime=" + runc

	// Fail open: a bad node configuration is one line, and the real
	// runtime runs (here: runc list, with the defaults).
	for _, tc := range []badRuntimeCase{
		{"config-missing", []string{wrapper, withRunc, "--fuseguard-config=/nonexistent/fg.toml", "--root", t.TempDir(), "list", "-q"}, nil, 0, "/nonexistent/fg.toml"},
		{"config-missing-env", []string{wrapper, withRunc, "--root", t.TempDir(), "list", "-q"}, []string{"FUSEGUARD_CONFIG=/nonexistent/fg.toml"}, 0, "/nonexistent/fg.toml"},
		{"config-unknown-key", []string{wrapper, withRunc, "--fuseguard-config", badConfig, "--root", t.TempDir(), "list", "-q"}, nil, 0, "policy.abort_shard"},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, env) })
	}

	t.Run("flags-stripped", func(t *testing.T) {
		// runc rejects any flag it does not know: it must never see ours.
		root := t.TempDir()
		r := run(t, 10*time.Second, nil, nil, wrapper, "--fuseguard-state-dir", dir, "--root", root,
			"--fuseguard-verify-timeout=1s", withRunc, "list", "-q")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("bundle-without-config", func(t *testing.T) {
		bundle, root := t.TempDir(), t.TempDir()
		args := []string{"--root", root, "create", "--bundle", bundle, "noconfig"}
		plain := run(t, 10*time.Second, nil, nil, append([]string{runc}, args...)...)
		wrapped := run(t, 10*time.Second, env, nil, append([]string{bin, "runtime", withRunc}, args...)...)
		if plain.code == 0 || wrapped.code != plain.code {
			t.Fatalf("wrapped exit %d, plain runc %d: the wrapper must pass runc's failure on", wrapped.code, plain.code)
		}
		if !strings.Contains(wrapped.stderr, "config.json") {
			t.Errorf("stderr %q: want runc's own error", wrapped.stderr)
		}
		if lines := fgcmd.LogLines(filepath.Join(dir, "runtime.log"), "noconfig"); len(lines) != 1 || !strings.Contains(lines[0], "bundle has no config.json") {
			t.Errorf("runtime.log: %q, want one line with the patch error", lines)
		}
	})

	t.Run("passthrough-exit-code", func(t *testing.T) {
		root := t.TempDir()
		plain := run(t, 10*time.Second, nil, nil, runc, "--root", root, "state", "nosuch")
		wrapped := run(t, 10*time.Second, env, nil, wrapper, withRunc, "--root", root, "state", "nosuch")
		if plain.code == 0 || wrapped.code != plain.code || noTime(wrapped.stderr) != noTime(plain.stderr) {
			t.Fatalf("wrapped %d %q, plain %d %q", wrapped.code, wrapped.stderr, plain.code, plain.stderr)
		}
		// kill KILL runs runc as a child: its code must come through too.
		plain = run(t, 10*time.Second, nil, nil, runc, "--root", root, "kill", "nosuch", "KILL")
		wrapped = run(t, 10*time.Second, env, nil, wrapper, withRunc, "--root", root, "kill", "nosuch", "KILL")
		if plain.code == 0 || wrapped.code != plain.code {
			t.Fatalf("kill: wrapped %d, plain %d", wrapped.code, plain.code)
		}
	})
}
