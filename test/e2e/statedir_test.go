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

// TestHookRefusesUnsafeStateDir: a state dir that is not private (0755, or
// owned by another uid) is refused. The hook fails open (exit 0) unless
// fail-closed (exit 1), says on stderr which path is wrong and why, and
// writes nothing into the directory: no record, no hook.log.
func TestHookRefusesUnsafeStateDir(t *testing.T) {
	testenv.RequireRoot(t)
	bin := fgcmd.Binary(t)
	pid := sleeper(t)
	for _, tc := range []struct {
		name string
		make func(dir string) error
		want string
	}{
		{"mode 0755", func(dir string) error { return os.Chmod(dir, 0o755) }, "has mode 0755, want 0700"},
		{"other owner", func(dir string) error { return os.Chown(dir, 65534, 65534) }, "is owned by uid 65534, want 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.StateDir(t)
			if err := tc.make(dir); err != nil {
				t.Fatal(err)
			}
			want := "unsafe state directory: " + dir + " " + tc.want
			for _, closed := range []bool{false, true} {
				env := []string{record.EnvStateDir + "=" + dir}
				if closed {
					env = append(env, "FUSEGUARD_FAIL_CLOSED=1")
				}
				r := run(t, 10*time.Second, env, stdinFile(t, hookState("unsafe", "creating", pid)), bin, "hook", "--no-watcher", "createRuntime")
				if wantCode := map[bool]int{false: 0, true: 1}[closed]; r.code != wantCode {
					t.Errorf("fail-closed %v: exit %d, want %d (stderr %q)", closed, r.code, wantCode, r.stderr)
				}
				if !strings.Contains(r.stderr, want) {
					t.Errorf("fail-closed %v: stderr %q lacks %q", closed, r.stderr, want)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil || len(entries) != 0 {
				t.Errorf("refused dir holds %v (%v), want nothing", entries, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "hook.log")); err == nil {
				t.Error("hook.log written into the refused dir")
			}
		})
	}
}
