package tracing_test

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The hooks would otherwise start a node watcher, which would rescue
	// the containers itself and outlive the test; everything started here
	// (dockerd and so the hooks, fuseguard commands) inherits this.
	os.Setenv("FUSEGUARD_WATCHER", "0")
	os.Exit(m.Run())
}
