package fgcmd

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fuseguard/fuseguard/test/gobuild"
)

// runtimeName is the runtime wrapper: the lean build of cmd/fuseguard.
const runtimeName = "fuseguard-runtime"

// leanTag builds cmd/fuseguard as fuseguard-runtime.
const leanTag = "fuseguard_lean"

// Binary returns the fuseguard command, built once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	return gobuild.Binary(t, "github.com/fuseguard/fuseguard/cmd/fuseguard")
}

// Runtime returns the runtime wrapper as installed: fuseguard-runtime, the
// lean build, with a fuseguard beside it (a link to Binary) that runs the
// watcher and takes over when tracing is on.
func Runtime(t testing.TB) string {
	t.Helper()
	lean := gobuild.Tagged(t, "github.com/fuseguard/fuseguard/cmd/fuseguard", runtimeName, leanTag)
	full := Binary(t)
	if filepath.Dir(lean) == filepath.Dir(full) {
		return lean // prebuilt side by side
	}
	link := filepath.Join(filepath.Dir(lean), filepath.Base(full))
	// Another test process may have made it already.
	if err := os.Symlink(full, link); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	if got, err := os.Readlink(link); err != nil || got != full {
		t.Fatalf("%s links to %q (%v), want %q", link, got, err, full)
	}
	return lean
}
