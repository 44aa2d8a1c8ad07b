package tracing_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
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
// once per test process into a directory TestMain removes. (test/e2e
// builds its own the same way; test packages cannot share test code.)
type built struct {
	dir, bin, runtime string
}

var buildOnce = sync.OnceValues(func() (built, error) {
	dir, err := os.MkdirTemp("", "fuseguard-tracing-")
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
	return b, os.Symlink("fuseguard", b.runtime)
})

func TestMain(m *testing.M) {
	// The hooks would otherwise start a node watcher, which would rescue
	// the containers itself and outlive the test; everything started here
	// (dockerd and so the hooks, fuseguard commands) inherits this.
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

// runtimeScript writes a runtime for daemon.json: the wrapper with its
// state directory, and env set before it (KEY=value words).
func runtimeScript(t testing.TB, b built, stateDir string, env ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fuseguard")
	body := fmt.Sprintf("#!/bin/sh\nexec env %s %s --fuseguard-state-dir %s \"$@\"\n", strings.Join(env, " "), b.runtime, stateDir)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedPort returns a loopback address nothing listens on: connections
// are refused at once (a collector that is down).
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// blackhole returns a loopback address that accepts connections (the
// kernel completes the handshake into the backlog) but never reads or
// answers: a hung collector, the case only a deadline gets out of.
func blackhole(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
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

// logLines returns the JSON lines of a state-dir log that mention id.
func logLines(path, id string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"id":"`+id+`"`) {
			out = append(out, sc.Text())
		}
	}
	return out
}
