package fgwatch

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/test/fgcmd"
)

// rescueLogTimeout bounds the wait for the watcher to log a rescue's
// result: the container can be gone (its runtime saw init exit) a moment
// before the watcher's kill has verified the exit and logged it.
const rescueLogTimeout = 10 * time.Second

// IsAbort reports whether a watcher log line says a rescue aborted a
// connection.
func IsAbort(line string) bool {
	return strings.Contains(line, `"msg":"rescue aborted FUSE connection"`)
}

// isRescued reports whether a watcher log line says a rescue ended with
// init gone after the abort.
func isRescued(line string) bool {
	return strings.Contains(line, `"msg":"rescued: init exited after the abort"`)
}

// AssertRescued waits until the watcher log at path says it rescued
// container id, and fails t unless the rescue aborted exactly conn. It
// returns the log's lines about id.
func AssertRescued(t testing.TB, path, id string, conn fuseconn.ConnID) []string {
	t.Helper()
	deadline := time.Now().Add(rescueLogTimeout)
	var lines []string
	for {
		lines = fgcmd.LogLinesBy(path, "container", id)
		if slices.ContainsFunc(lines, isRescued) {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("the watcher logged no rescue of %.12s within %v:\n%s", id, rescueLogTimeout, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var aborted []fuseconn.ConnID
	for _, l := range lines {
		if IsAbort(l) {
			var m struct{ Conn fuseconn.ConnID }
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			aborted = append(aborted, m.Conn)
		}
	}
	if !slices.Equal(aborted, []fuseconn.ConnID{conn}) {
		t.Fatalf("watcher aborted %v, want exactly [%s]:\n%s", aborted, conn, strings.Join(lines, "\n"))
	}
	return lines
}
