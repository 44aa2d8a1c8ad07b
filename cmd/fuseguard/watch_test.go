package main

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestWatchAndStatus runs `fuseguard watch` (tracking at most one record
// of two), refuses a second one, and reads `fuseguard status` in text and
// JSON.
func TestWatchAndStatus(t *testing.T) {
	testenv.RequireRoot(t)
	bin := fgcmd.Binary(t)
	dir := testenv.StateDir(t)
	rec, err := record.NewRecord(proc.NewFS(""), "self", os.Getpid(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := (record.Store{Dir: dir}).Save(rec); err != nil {
		t.Fatal(err)
	}
	over := *rec
	over.ID = "self2" // after "self": refused past --max-tracked 1
	if err := (record.Store{Dir: dir}).Save(&over); err != nil {
		t.Fatal(err)
	}

	w, lines := fgcmd.StartLogged(t, bin, "watch", "--state-dir", dir, "--log-format", "json", "--max-tracked", "1")
	for l := fgcmd.WaitLine(t, lines, `"container":"self"`, 10*time.Second); !strings.Contains(l.Text, `"msg":"tracking container"`); {
		l = fgcmd.WaitLine(t, lines, `"container":"self"`, 10*time.Second)
	}

	_, stderr, code := fg(t, "watch", "--state-dir", dir)
	if code != exitFailure || !strings.Contains(stderr, "held by pid "+strconv.Itoa(w.Process.Pid)) {
		t.Errorf("second watcher: exit %d, stderr %q; want %d naming pid %d", code, stderr, exitFailure, w.Process.Pid)
	}

	// The watcher publishes its state within a moment of the change.
	var out string
	for deadline := time.Now().Add(3 * time.Second); ; {
		out, _, code = fg(t, "status", "--state-dir", dir)
		if strings.Contains(out, "self2: not tracked") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out, "self2: not tracked") || !strings.Contains(out, "tracking 1 of at most 1 records, 1 not tracked") {
		t.Errorf("status does not show the record over the cap:\n%s", out)
	}
	if code != exitOK || !strings.Contains(out, "watcher: running, pid "+strconv.Itoa(w.Process.Pid)) ||
		!strings.Contains(out, "self") || !strings.Contains(out, strconv.Itoa(os.Getpid())) || !strings.Contains(out, watch.InitRunning) {
		t.Errorf("status (exit %d):\n%s", code, out)
	}
	out, _, code = fg(t, "status", "--state-dir", dir, "--json")
	var st watch.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != exitOK {
		t.Fatalf("status --json (exit %d): %v\n%s", code, err, out)
	}
	if st.WatcherPID != w.Process.Pid || len(st.Containers) != 2 || st.Containers[0].ID != "self" ||
		st.Containers[0].InitPID != os.Getpid() || st.Containers[0].Init != watch.InitRunning {
		t.Errorf("status --json: %+v", st)
	}
	if st.Watcher == nil || st.Watcher.Tracked != 1 || st.Watcher.NotTracked != 1 ||
		st.Containers[0].Watch != nil || st.Containers[1].Watch == nil || !st.Containers[1].Watch.NotTracked {
		t.Errorf("status --json: watcher %+v, containers %+v", st.Watcher, st.Containers)
	}

	// SIGTERM: a clean, bounded shutdown.
	if err := w.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), watch.DefaultShutdown+2*time.Second)
	defer cancel()
	closed := make(chan struct{})
	go func() {
		for range lines {
		}
		close(closed)
	}()
	select {
	case <-closed:
		if err := w.Wait(); err != nil {
			t.Errorf("watcher exit: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("watcher did not stop on SIGTERM")
	}
	out, _, _ = fg(t, "status", "--state-dir", dir)
	if !strings.Contains(out, "watcher: not running") || strings.Contains(out, "not tracked") {
		t.Errorf("status after stop:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, watch.StateName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stopped watcher left its state: %v", err)
	}
}
