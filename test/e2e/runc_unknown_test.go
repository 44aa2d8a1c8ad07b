package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestRuncWrapperUnknownFlag: a create with a flag the wrapper does not
// know (a runc newer than its table) still gets fuseguard's hooks, and
// runtime.log says the command line was not fully understood. Against
// each real runc, which rejects the flag itself (the wrapper passes its
// failure on), and against that runc behind a shim that accepts the flag
// as a newer runc would: the container is created and the injected hook
// records it.
func TestRuncWrapperUnknownFlag(t *testing.T) {
	testenv.ForEachRunc(t, func(t *testing.T, runc string) {
		t.Run("runc-rejects", func(t *testing.T) { testRuncWrapperUnknownFlag(t, runc, false) })
		t.Run("newer-runc", func(t *testing.T) { testRuncWrapperUnknownFlag(t, runc, true) })
	})
}

func testRuncWrapperUnknownFlag(t *testing.T, runc string, newer bool) {
	b := newRuncBundle(t, runc, "/bin/sleep", "1000")
	bin := fgcmd.Binary(t)
	runtime := runc
	if newer {
		runtime = futureRunc(t, runc)
	}
	out, err := os.Create(b.out)
	if err != nil {
		t.Fatal(err)
	}
	createArgs := []string{"create", "--future-flag", "x", "--bundle", b.dir, b.id}
	cr := runWithOutput(t, out, append([]string{bin, "runtime", "--fuseguard-runtime", runtime, "--fuseguard-state-dir=" + b.stateDir,
		"--root", b.root}, createArgs...)...)
	out.Close()
	output := mustRead(b.out)

	if !b.hooked(readConfig(t, b.dir), bin) {
		t.Errorf("no fuseguard createRuntime hook in config.json after %q:\n%s", createArgs, mustRead(filepath.Join(b.dir, "config.json")))
	}
	lines := fgcmd.LogLines(filepath.Join(b.stateDir, "runtime.log"), b.id)
	if !slices.ContainsFunc(lines, func(l string) bool { return warnsUnknown(l, "--future-flag", "x") }) {
		t.Errorf("runtime.log has no warning naming --future-flag x for %s:\n%s", b.id, strings.Join(lines, "\n"))
	}

	st, created := b.state(t)
	if !newer {
		// The real runc rejects the flag before it creates anything;
		// its error and exit code are the caller's answer.
		if cr.code == 0 || created || !strings.Contains(output, "flag provided but not defined") {
			t.Errorf("runc took --future-flag: exit %d, created %v, said %s", cr.code, created, output)
		}
		return
	}
	if cr.code != 0 || !created || st.Status != "created" {
		t.Fatalf("create through a runc that knows --future-flag: exit %d, state %+v (known %v)\n%s", cr.code, st, created, output)
	}
	rec, err := record.Store{Dir: b.stateDir}.Load(b.id)
	if err != nil {
		t.Fatalf("no record: the injected hook did not run: %v\nhook.log:\n%s", err, mustRead(filepath.Join(b.stateDir, "hook.log")))
	}
	if rec.InitPID != st.Pid {
		t.Errorf("record's init %d, runc's %d", rec.InitPID, st.Pid)
	}
}

// warnsUnknown reports whether the runtime.log line l is the wrapper's
// warning about flags it does not know, listing exactly unknown.
func warnsUnknown(l string, unknown ...string) bool {
	var e struct {
		Level   string   `json:"level"`
		Msg     string   `json:"msg"`
		Unknown []string `json:"unknown"`
	}
	return json.Unmarshal([]byte(l), &e) == nil && e.Level == "warning" &&
		strings.Contains(e.Msg, "flags fuseguard does not know") && slices.Equal(e.Unknown, unknown)
}

// futureRunc writes a runtime that is runc with one flag of a future
// release: create's --future-flag VALUE, accepted and dropped.
func futureRunc(t *testing.T, runc string) string {
	t.Helper()
	sh := testenv.RequireBinary(t, "sh")
	script := filepath.Join(t.TempDir(), "runc-future")
	body := fmt.Sprintf(`#!%s
skip=0
for a do
	shift
	if [ $skip = 1 ]; then skip=0; continue; fi
	if [ "$a" = --future-flag ]; then skip=1; continue; fi
	set -- "$@" "$a"
done
exec %s "$@"
`, sh, runc)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}
