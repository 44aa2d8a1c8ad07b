package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestRuntimeHandsOffForTracing: the lean fuseguard-runtime links no span
// exporter. With tracing configured it hands the process over to the full
// fuseguard beside it, whose hook exports the spans (console exporter:
// stderr); with no fuseguard beside it, it goes on without spans and says
// why in hook.log (fail open). The record is written either way.
func TestRuntimeHandsOffForTracing(t *testing.T) {
	lean := fgcmd.Runtime(t)
	alone := filepath.Join(t.TempDir(), "fuseguard-runtime")
	b, err := os.ReadFile(lean)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	pid := sleeper(t)
	for _, tc := range []struct {
		name  string
		bin   string
		spans bool
	}{
		{"beside-fuseguard", lean, true},
		{"alone", alone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.StateDir(t)
			env := []string{record.EnvStateDir + "=" + dir, "FUSEGUARD_WATCHER=0", "OTEL_TRACES_EXPORTER=console"}
			r := run(t, 10*time.Second, env, stdinFile(t, hookState("handoff", "running", pid)), tc.bin, "hook", "poststart")
			if r.code != 0 {
				t.Fatalf("hook poststart: exit %d: %s", r.code, r.stderr)
			}
			if got := strings.Contains(r.stderr, `fuseguard.hook.poststart"`); got != tc.spans {
				t.Errorf("span fuseguard.hook.poststart exported: %v, want %v; stderr:\n%s", got, tc.spans, r.stderr)
			}
			log := mustRead(filepath.Join(dir, "hook.log"))
			if warned := strings.Contains(log, "full fuseguard binary could not be run"); warned == tc.spans {
				t.Errorf("hook.log says the full binary could not be run: %v, want %v:\n%s", warned, !tc.spans, log)
			}
			if _, err := (record.Store{Dir: dir}).Load("handoff"); err != nil {
				t.Errorf("no record after poststart: %v", err)
			}
		})
	}
}

// TestRuntimeOlderLink: an older install's fuseguard-runtime, a symlink to
// fuseguard, still is the wrapper (the full binary acts as it under that
// name), and so is `fuseguard runtime`: both pass runc's list through.
func TestRuntimeOlderLink(t *testing.T) {
	bin := fgcmd.Binary(t)
	testenv.RequireBinary(t, "runc")
	link := filepath.Join(t.TempDir(), "fuseguard-runtime")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	dir := testenv.StateDir(t)
	for name, argv := range map[string][]string{
		"link":    {link, "--fuseguard-state-dir", dir, "--root", t.TempDir(), "list", "-q"},
		"command": {bin, "runtime", "--fuseguard-state-dir", dir, "--root", t.TempDir(), "list", "-q"},
	} {
		t.Run(name, func(t *testing.T) {
			if r := run(t, 10*time.Second, nil, nil, argv...); r.code != 0 || r.stderr != "" {
				t.Fatalf("%v: exit %d, stderr %q", argv, r.code, r.stderr)
			}
		})
	}
}
