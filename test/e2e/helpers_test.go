package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// built is the fuseguard binary and its fuseguard-runtime symlink, built
// once per test process into a directory TestMain removes.
type built struct {
	dir, bin, runtime string
}

var buildOnce = sync.OnceValues(func() (built, error) {
	dir, err := os.MkdirTemp("", "fuseguard-e2e-")
	if err != nil {
		return built{}, err
	}
	b := built{dir: dir, bin: filepath.Join(dir, "fuseguard"), runtime: filepath.Join(dir, "fuseguard-runtime")}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "github.com/fuseguard/fuseguard/cmd/fuseguard")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build cmd/fuseguard: %v\n%s", err, out)
	}
	if err := os.Symlink("fuseguard", b.runtime); err != nil {
		return b, err
	}
	return b, nil
})

func TestMain(m *testing.M) {
	// The hook starts a node watcher by default, which would outlive the
	// tests and race the wrapper's rescue that most of them assert. Every
	// command and dockerd here inherits this; the watcher tests
	// (watch_docker_test.go) unset it for their runtimes.
	os.Setenv("FUSEGUARD_WATCHER", "0")
	code := m.Run()
	if b, _ := buildOnce(); b.dir != "" {
		os.RemoveAll(b.dir)
	}
	os.Exit(code)
}

func fuseguardBinary(t testing.TB) built {
	t.Helper()
	testenv.RequireBinary(t, "go")
	b, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return b
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

// mountedConn finds the connection id in fusefixture's mounted event.
var mountedConn = regexp.MustCompile(`fusefixture: mounted conn=(\d+)`)

func parseConn(t testing.TB, logs string) uint32 {
	t.Helper()
	m := mountedConn.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no mounted event in the container output:\n%s", logs)
	}
	n, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
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

// logLines returns the JSON lines of a state-dir log that mention id.
func logLines(path, id string) []string {
	return logLinesBy(path, "id", id)
}

// logLinesBy returns the JSON lines of a state-dir log whose field key is
// value (the watcher names a container "container", not "id").
func logLinesBy(path, key, value string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"`+key+`":"`+value+`"`) {
			out = append(out, sc.Text())
		}
	}
	return out
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
