package fgcmd

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fuseguard/fuseguard/test/gobuild"
)

// runtimeName is the argv[0] that makes fuseguard the runtime wrapper.
const runtimeName = "fuseguard-runtime"

// Binary returns the fuseguard command, built once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	return gobuild.Binary(t, "github.com/fuseguard/fuseguard/cmd/fuseguard")
}

// Runtime returns the runtime wrapper: a fuseguard-runtime link to Binary
// beside it.
func Runtime(t testing.TB) string {
	t.Helper()
	bin := Binary(t)
	link := filepath.Join(filepath.Dir(bin), runtimeName)
	target := filepath.Base(bin)
	// Another test process may have made it already.
	if err := os.Symlink(target, link); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	if got, err := os.Readlink(link); err != nil || got != target {
		t.Fatalf("%s links to %q (%v), want %q", link, got, err, target)
	}
	return link
}
