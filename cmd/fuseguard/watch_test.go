package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
	"github.com/fuseguard/fuseguard/watch"
)

// TestWatchAndStatus runs `fuseguard watch`, refuses a second one, and
// reads `fuseguard status` in text and JSON.
func TestWatchAndStatus(t *testing.T) {
	testenv.RequireRoot(t)
	bin := fgcmd.Binary(t)
	dir := testenv.StateDir(t)
	rec, err := fuseguard.NewRecord(proc.NewFS(""), "self", os.Getpid(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := (fuseguard.Store{Dir: dir}).Save(rec); err != nil {
		t.Fatal(err)
	}

	w := exec.Command(bin, "watch", "--state-dir", dir, "--log-format", "json")
	w.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logs, err := w.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = w.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	})
	tracked := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "tracking container" && l["container"] == "self" {
				close(tracked)
			}
		}
		exited <- w.Wait()
	}()
	select {
	case <-tracked:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not track the record")
	}

	_, stderr, code := fg(t, "watch", "--state-dir", dir)
	if code != exitFailure || !strings.Contains(stderr, "held by pid "+strconv.Itoa(w.Process.Pid)) {
		t.Errorf("second watcher: exit %d, stderr %q; want %d naming pid %d", code, stderr, exitFailure, w.Process.Pid)
	}

	out, _, code := fg(t, "status", "--state-dir", dir)
	if code != exitOK || !strings.Contains(out, "watcher: running, pid "+strconv.Itoa(w.Process.Pid)) ||
		!strings.Contains(out, "self") || !strings.Contains(out, strconv.Itoa(os.Getpid())) || !strings.Contains(out, watch.InitRunning) {
		t.Errorf("status (exit %d):\n%s", code, out)
	}
	out, _, code = fg(t, "status", "--state-dir", dir, "--json")
	var st watch.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != exitOK {
		t.Fatalf("status --json (exit %d): %v\n%s", code, err, out)
	}
	if st.WatcherPID != w.Process.Pid || len(st.Containers) != 1 || st.Containers[0].ID != "self" ||
		st.Containers[0].InitPID != os.Getpid() || st.Containers[0].Init != watch.InitRunning {
		t.Errorf("status --json: %+v", st)
	}

	// SIGTERM: a clean, bounded shutdown.
	if err := w.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), watch.DefaultShutdown+2*time.Second)
	defer cancel()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("watcher exit: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("watcher did not stop on SIGTERM")
	}
	out, _, _ = fg(t, "status", "--state-dir", dir)
	if !strings.Contains(out, "watcher: not running") {
		t.Errorf("status after stop:\n%s", out)
	}
}
