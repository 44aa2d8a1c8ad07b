package watch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// An unreadable record is logged and emitted as EventError naming it; the
// watcher goes on.
func TestUnreadableRecordEmitsError(t *testing.T) {
	dir := testenv.StateDir(t)
	r := startWatcher(t, dir, Options{})
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := r.ev.wait(t, EventError, "broken", 5*time.Second)
	if ev.Err == nil {
		t.Errorf("EventError without Err: %+v", ev)
	}
	rec := saveRecord(t, dir, "fine", os.Getpid())
	r.ev.wait(t, EventTracked, rec.ID, 5*time.Second)
}
