package jaeger

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

const (
	// EnvBinary names a jaeger binary to use instead of <root>/bin/jaeger.
	EnvBinary = "FUSEGUARD_JAEGER"
	// buildTimeout bounds a cold build of Jaeger (minutes on two cores).
	buildTimeout = 15 * time.Minute
	jaegerPkg    = "github.com/jaegertracing/jaeger/cmd/jaeger"
)

// binary returns the jaeger binary, building <root>/bin/jaeger from the
// tools module if it is missing. A lock file serialises builds by test
// binaries of several packages running at once.
func binary(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "jaeger")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(root, "bin", ".jaeger.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("jaeger: lock build: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil { // built by another package's test meanwhile
		return bin, nil
	}

	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	// Build to a temporary name and rename, so a killed build never leaves
	// a truncated bin/jaeger behind.
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, jaegerPkg)
	cmd.Dir = filepath.Join(root, "tools")
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("jaeger: go build %s (make bin/jaeger does the same): %w\n%s", jaegerPkg, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}
