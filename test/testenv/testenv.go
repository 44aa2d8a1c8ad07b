// Package testenv decides whether a test's prerequisites are present. Where
// one is missing a test skips with the exact reason, except under CI
// (CI=true), where a missing prerequisite fails the test: CI installs
// everything the suite needs, so a skip there would hide a broken set-up.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// UnderCI reports whether CI=true (or FUSEGUARD_REQUIRE_ALL=1) is set.
func UnderCI() bool {
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		return true
	}
	return os.Getenv("FUSEGUARD_REQUIRE_ALL") == "1"
}

// Require skips (or, under CI, fails) t with reason when ok is false: the
// one way a test says a prerequisite of the machine is missing.
func Require(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if UnderCI() {
		t.Fatalf("prerequisite missing under CI: %s", reason)
	}
	t.Skipf("requires %s", reason)
}

// RequireRoot needs uid 0.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "root (uid 0); run the suite as root")
}

// RequireFUSE needs root and a usable /dev/fuse.
func RequireFUSE(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	Require(t, err == nil, "/dev/fuse openable for read and write: "+errString(err))
}

// RequireBinary needs an executable on PATH and returns its path.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, err == nil, name+" on PATH (Debian package; .ci/run installs it): "+errString(err))
	return p
}

// RequireLong needs long-running tests to be enabled: they run unless -short.
func RequireLong(t testing.TB) {
	t.Helper()
	if testing.Short() && !UnderCI() {
		t.Skip("requires a run without -short (FUSEGUARD_ long test)")
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// ModuleRoot walks up from the working directory (a test's package
// directory) to the fuseguard module's root: the directory with go.mod and
// tools/go.mod, where bin/ holds the tools the Makefile builds.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "tools", "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no module root with tools/go.mod above the working directory")
		}
		dir = parent
	}
}

// RequireTool needs <module root>/bin/name, a program the Makefile builds
// from a pinned tools module (target names it), and returns its path.
func RequireTool(t testing.TB, name, target string) string {
	t.Helper()
	root, err := ModuleRoot()
	p := filepath.Join(root, "bin", name)
	if err == nil {
		_, err = os.Stat(p)
	}
	Require(t, err == nil, p+" (built by `make "+target+"`): "+errString(err))
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// RequireArtifact needs exactly one file matching pattern (a glob relative
// to the module root) that `make target` builds, and returns its path.
func RequireArtifact(t testing.TB, pattern, target string) string {
	t.Helper()
	root, err := ModuleRoot()
	var matches []string
	if err == nil {
		matches, err = filepath.Glob(filepath.Join(root, pattern))
	}
	if err == nil && len(matches) != 1 {
		err = fmt.Errorf("%d files match, want 1: %q", len(matches), matches)
	}
	Require(t, err == nil, filepath.Join(root, pattern)+" (built by `make "+target+"`): "+errString(err))
	return matches[0]
}
