package fgcmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RuntimeScript writes the path of a runtime entry for daemon.json: a
// script that runs the wrapper under `env envArgs…` with
// --fuseguard-state-dir before the runtime's arguments, exactly what
// Docker 20.10 itself generates for a runtime with "runtimeArgs".
func RuntimeScript(t testing.TB, stateDir string, envArgs ...string) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "fuseguard")
	body := fmt.Sprintf("#!/bin/sh\nexec env %s %s --fuseguard-state-dir %s \"$@\"\n", strings.Join(envArgs, " "), Runtime(t), stateDir)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}
