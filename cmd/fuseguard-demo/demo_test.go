package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/gobuild"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// demoBinary is this command, built once per test process.
func demoBinary(t *testing.T) string {
	t.Helper()
	return gobuild.Binary(t, "github.com/fuseguard/fuseguard/cmd/fuseguard-demo")
}

// runDemo runs the demo binary with args, bounded, and returns its output
// and exit code.
func runDemo(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return fgcmd.Run(t, demoBinary(t), nil, args...)
}

func demoDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "fuseguard-demo-*"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func TestDemoRescuesW2AndLeavesNothing(t *testing.T) {
	testenv.RequireFUSE(t)
	before := demoDirs(t)
	stdout, stderr, code := runDemo(t, "--verify-timeout", "1s")
	if code != exitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"zap_pid_ns_processes", "request_wait_answer", "owned=true", "init reaped", "rescued: outcome recovered"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	if after := demoDirs(t); !slices.Equal(before, after) {
		t.Errorf("demo left directories behind: before %v, after %v", before, after)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), "fuse.ndrive") {
		t.Errorf("a fuse.ndrive mount is left in the host's table:\n%s", mi)
	}
}

func TestDemoRefusesNonRoot(t *testing.T) {
	testenv.RequireRoot(t)
	bin := demoBinary(t)
	// The nobody user must be able to run the binary.
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitFailure {
		t.Fatalf("demo as nobody: %v, want exit %d\n%s", err, exitFailure, out)
	}
	if !strings.Contains(string(out), "needs root") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("demo as nobody: want one line saying it needs root, got %q", out)
	}
}
