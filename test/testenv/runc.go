package testenv

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Runc is one real runc that the runtime wrapper and its argv parser are
// tested against.
type Runc struct {
	// Name names its subtests.
	Name string
	// Path returns the binary's path, or skips (under CI: fails) t when
	// it is missing.
	Path func(t testing.TB) string
}

// Runcs are Debian's runc 1.1 and runc 1.3 built from its module
// (tools/runc, `make bin/runc-1.3`): containerd 2 passes runc ≥ 1.2 flags
// that 1.1 does not have (create --pidfd-socket).
func Runcs() []Runc {
	return []Runc{
		{"runc-1.1-debian", func(t testing.TB) string { return RequireBinary(t, "runc") }},
		{"runc-1.3", func(t testing.TB) string { return RequireTool(t, "runc-1.3", "bin/runc-1.3") }},
	}
}

// ForEachRunc runs test as one subtest per runc of Runcs, named after it.
func ForEachRunc(t *testing.T, test func(t *testing.T, runc string)) {
	t.Helper()
	for _, r := range Runcs() {
		t.Run(r.Name, func(t *testing.T) { test(t, r.Path(t)) })
	}
}

var runcVersion = regexp.MustCompile(`(?m)^runc version (\d+)\.(\d+)\.`)

// RuncVersion returns the major and minor version that `runc --version`
// prints, and fails t when it prints none.
func RuncVersion(t testing.TB, runc string) (major, minor int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, runc, "--version").Output()
	m := runcVersion.FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("%s --version: %v: %q", runc, err, out)
	}
	major, _ = strconv.Atoi(string(m[1]))
	minor, _ = strconv.Atoi(string(m[2]))
	return major, minor
}

// RuncAtLeast reports whether runc is version major.minor or newer.
func RuncAtLeast(t testing.TB, runc string, major, minor int) bool {
	t.Helper()
	gotMajor, gotMinor := RuncVersion(t, runc)
	return gotMajor > major || (gotMajor == major && gotMinor >= minor)
}
