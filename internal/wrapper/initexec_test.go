package wrapper

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestKillInitInExecve: `kill <id> KILL` through the wrapper of a
// container whose init itself sleeps inside execve (fixture.W6Init), so
// its stat, and the start time its record names it by, cannot be read.
// The record's cgroup names it instead, and the wrapper's rescue (after its
// own SIGKILL, or after the runtime's, here a script that signals init as
// runc would) aborts the container's connection: init dies within
// KillBound and the exit code is 0.
func TestKillInitInExecve(t *testing.T) {
	sh := testenv.RequireBinary(t, "sh")
	store := record.Store{Dir: testenv.StateDir(t)}
	c := fixture.W6Init(t, func(c *fixture.Container) {
		rec, err := record.NewRecord(proc.NewFS(""), "init-exec", c.InitPID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Save(rec); err != nil {
			t.Fatal(err)
		}
	})
	rt := filepath.Join(t.TempDir(), "runtime")
	if err := os.WriteFile(rt, fmt.Appendf(nil, "#!%s\nkill -9 %d\n", sh, c.InitPID), 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	l := logrus.New()
	l.SetFormatter(&logrus.JSONFormatter{})
	l.SetOutput(&logs)
	w := &Wrapper{Runtime: rt, Store: store, VerifyTimeout: time.Second, RecoverTimeout: 2 * time.Second, Log: l}
	begin := time.Now()
	code := w.Run(context.Background(), []string{"kill", "init-exec", "KILL"})
	took := time.Since(begin)
	t.Logf("kill returned %d after %v:\n%s", code, took.Round(time.Millisecond), logs.String())
	if code != 0 {
		t.Errorf("exit %d, want 0\n%s", code, logs.String())
	}
	if bound := w.KillBound(); took > bound {
		t.Errorf("kill returned after %v, bound %v", took, bound)
	}
	if !strings.Contains(logs.String(), `"outcome":"recovered"`) {
		t.Errorf("init not rescued:\n%s", logs.String())
	}
	select {
	case <-c.Exited():
	case <-time.After(5 * time.Second):
		t.Fatalf("init not reaped after the kill\n%s", logs.String())
	}
	if left := c.Tasks(); len(left) > 0 {
		t.Errorf("tasks left behind: %v", left)
	}
}
