package watch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestLockRefusesSymlink: a symlink planted at watch.lock is neither
// followed nor written through (the lock is truncated and written as
// root), and Holder does not follow it either.
func TestLockRefusesSymlink(t *testing.T) {
	dir := testenv.StateDir(t)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, LockName)); err != nil {
		t.Fatal(err)
	}
	if l, err := AcquireLock(dir); err == nil {
		l.Release()
		t.Fatal("lock taken through a symlink")
	}
	if _, err := Holder(dir); err == nil {
		t.Error("Holder followed a symlinked lock")
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
		t.Errorf("symlink target changed: %q", b)
	}
}

// TestLockRefusesUnsafeStateDir: the watcher does not start on a state
// dir that is not private; the error names the dir and what is wrong.
func TestLockRefusesUnsafeStateDir(t *testing.T) {
	dir := testenv.StateDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := AcquireLock(dir)
	if !errors.Is(err, record.ErrUnsafeStateDir) || !strings.Contains(err.Error(), dir+" has mode 0755") {
		t.Fatalf("AcquireLock on a 0755 dir: %v, want ErrUnsafeStateDir naming it", err)
	}
}
