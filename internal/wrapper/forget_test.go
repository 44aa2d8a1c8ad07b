package wrapper

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestForget: the wrapper's delete removes a record only when its init is
// provably gone, real processes standing in for init.
func TestForget(t *testing.T) {
	live := exec.Command("sleep", "1000")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	st, err := proc.NewFS("").Stat(context.Background(), live.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	// A zombie: exited, not reaped yet (runc deletes such an init's
	// container as stopped).
	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zombie.Wait() })
	zst, err := proc.NewFS("").Stat(context.Background(), zombie.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s, err := proc.NewFS("").Stat(context.Background(), zombie.Process.Pid)
		if err == nil && s.State == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never became a zombie: %+v %v", zombie.Process.Pid, s, err)
		}
	}
	for _, tc := range []struct {
		name     string
		pid      int
		start    uint64
		wantKept bool
	}{
		{"init gone", dead.Process.Pid, 1, false},
		{"init a zombie", zombie.Process.Pid, zst.StartTime, false},
		{"pid reused by another process", live.Process.Pid, st.StartTime + 1, false},
		{"init alive", live.Process.Pid, st.StartTime, true},
		{"no start time recorded: cannot tell", live.Process.Pid, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := record.NewStore(testenv.StateDir(t))
			if err := store.Save(&record.Record{ID: "c1", InitPID: tc.pid, InitStartTime: tc.start, Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			w := &Wrapper{Store: store}
			w.defaults()
			inv, err := oci.ParseRuncArgs([]string{"--root", t.TempDir(), "delete", "c1"})
			if err != nil {
				t.Fatal(err)
			}
			w.forget(context.Background(), inv)
			_, err = store.Load("c1")
			if kept := err == nil; kept != tc.wantKept {
				t.Fatalf("record kept = %v (%v), want %v", kept, err, tc.wantKept)
			}
			if err != nil && !errors.Is(err, record.ErrNoRecord) {
				t.Fatal(err)
			}
		})
	}
	t.Run("no record", func(t *testing.T) {
		w := &Wrapper{Store: record.NewStore(testenv.StateDir(t))}
		w.defaults()
		inv, err := oci.ParseRuncArgs([]string{"delete", "c1"})
		if err != nil {
			t.Fatal(err)
		}
		w.forget(context.Background(), inv) // nothing to do, nothing to fail
	})
}
