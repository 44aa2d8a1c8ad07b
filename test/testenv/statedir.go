package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// StateDir returns a new, empty state directory that fuseguard accepts:
// private to the test's user (0700; t.TempDir's own mode follows the
// umask) and removed at cleanup.
func StateDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}
