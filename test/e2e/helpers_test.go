package e2e_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The hook starts a node watcher by default, which would outlive the
	// tests and race the wrapper's rescue that most of them assert. Every
	// command and dockerd here inherits this; the watcher tests
	// (watch_docker_test.go) unset it for their runtimes.
	os.Setenv("FUSEGUARD_WATCHER", "0")
	os.Exit(m.Run())
}

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs argv with env added to the test's environment, stdin from
// stdin (nil: none), bounded by timeout; a hang fails the test.
func run(t testing.TB, timeout time.Duration, env []string, stdin *os.File, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.WaitDelay = time.Second
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	begin := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(begin)}
	if ctx.Err() != nil {
		t.Fatalf("%s hung (%v): %v\nstderr: %s", strings.Join(argv, " "), timeout, ctx.Err(), r.stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return r
}

// waitFile polls path until it contains substr or timeout passes, and
// returns its content. The file is a plain file on the host, never on FUSE.
func waitFile(t testing.TB, path, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), substr) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not in %s within %v:\n%s", substr, path, timeout, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func execCmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd
}

// runWithOutput runs argv with stdout and stderr on out (a file the
// command may hand to a container), bounded by 30 s.
func runWithOutput(t testing.TB, out *os.File, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := execCmd(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	begin := time.Now()
	err := cmd.Run()
	r := result{took: time.Since(begin)}
	if ctx.Err() != nil {
		t.Fatalf("%s hung: %v", strings.Join(argv, " "), ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
		r.stderr = "(see output file)"
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}
