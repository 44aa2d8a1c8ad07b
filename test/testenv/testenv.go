// Package testenv decides whether a test's prerequisites are present. Where
// one is missing a test skips with the exact reason, except under CI
// (CI=true), where a missing prerequisite fails the test: CI installs
// everything the suite needs, so a skip there would hide a broken set-up.
package testenv

import (
	"os"
	"os/exec"
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

// require skips (or, under CI, fails) t with reason when ok is false.
func require(t testing.TB, ok bool, reason string) {
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
	require(t, os.Geteuid() == 0, "root (uid 0); run the suite as root")
}

// RequireFUSE needs root and a usable /dev/fuse.
func RequireFUSE(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	require(t, err == nil, "/dev/fuse openable for read and write: "+errString(err))
}

// RequireBinary needs an executable on PATH and returns its path.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	require(t, err == nil, name+" on PATH (Debian package; .ci/run installs it): "+errString(err))
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
