package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/obs"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fgwatch"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestStateLogsRotate: runtime.log, hook.log and watch.log, each already
// at its cap, are rotated by the next entry the wrapper, a hook and the
// watcher write: the full file becomes NAME.1, whole, and NAME starts
// again with the new entry.
func TestStateLogsRotate(t *testing.T) {
	t.Parallel()
	dir := testenv.StateDir(t)
	full := bytes.Repeat([]byte(`{"msg":"filler"}`+"\n"), obs.DefaultLogMaxSize/17)
	fill := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), full, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	assertRotated := func(name, entry string) {
		t.Helper()
		rotated, err := os.ReadFile(filepath.Join(dir, name+".1"))
		if err != nil || !bytes.Equal(rotated, full) {
			t.Errorf("%s.1: %d bytes (%v), want the %d bytes of the full file", name, len(rotated), err, len(full))
		}
		cur, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(cur) >= len(full) || !strings.Contains(string(cur), entry) {
			t.Errorf("%s after rotation: %d bytes (%v), want a fresh file with %q:\n%.500s", name, len(cur), err, entry, cur)
		}
	}

	// The wrapper logs a command line it does not understand.
	fill("runtime.log")
	if _, stderr, code := fgcmd.Run(t, fgcmd.Binary(t), nil, "runtime", "--fuseguard-runtime", testenv.RequireBinary(t, "true"),
		"--fuseguard-state-dir", dir, "--future-global", "state", "c1"); code != 0 {
		t.Fatalf("runtime: exit %d: %s", code, stderr)
	}
	assertRotated("runtime.log", "command line not understood")

	// A hook logs that it is done.
	fill("hook.log")
	state := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(state, []byte(`{"ociVersion":"1.0.2","id":"rotate","status":"stopped","bundle":"/nonexistent"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin, err := os.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if _, stderr, code := fgcmd.RunStdin(t, fgcmd.Binary(t), nil, stdin, "hook", "--state-dir", dir, "poststop"); code != 0 {
		t.Fatalf("hook: exit %d: %s", code, stderr)
	}
	assertRotated("hook.log", `"msg":"hook done"`)

	// The watcher logs its start.
	fill(watch.LogName)
	fgwatch.StartWatcher(t, dir, "watch.stdout", "--log-file", filepath.Join(dir, watch.LogName))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, watch.LogName+".1")); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	assertRotated(watch.LogName, `"level"`)
}
