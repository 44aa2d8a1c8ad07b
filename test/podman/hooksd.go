package podman

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// shippedBinDir is the directory the shipped hooks.d files name; install.sh
// rewrites it for its PREFIX the same way WriteHooksDir does.
const shippedBinDir = "/usr/local/bin/"

// WriteHooksDir writes into dir the shipped deploy/hooks.d files, each with
// only two changes: shippedBinDir replaced by binary's directory (what
// install.sh does for a PREFIX; binary must be named fuseguard) and
// `--state-dir stateDir` added to the hook's arguments, so that the
// test's records stay in its own directory (none for stateDir "": with
// shippedBinary, the files are written as shipped). The substituted file is
// checked against oci.HooksD, the generator of the shipped files: what
// podman loads is what ships.
func WriteHooksDir(t testing.TB, dir, binary, stateDir string) {
	t.Helper()
	if filepath.Base(binary) != "fuseguard" || !filepath.IsAbs(binary) {
		t.Fatalf("hooks.d: binary %q: want an absolute path ending in /fuseguard", binary)
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, stage := range oci.Stages() {
		name := "fuseguard-" + string(stage) + ".json"
		shipped, err := os.ReadFile(filepath.Join(root, "deploy", "hooks.d", name))
		if err != nil {
			t.Fatal(err)
		}
		moved := bytes.ReplaceAll(shipped, []byte(shippedBinDir), []byte(filepath.Dir(binary)+"/"))
		want, err := oci.HooksD(binary, stage, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(moved, want) {
			t.Fatalf("deploy/hooks.d/%s with %s → %s:\n%s\nis not oci.HooksD's:\n%s", name, shippedBinDir, filepath.Dir(binary), moved, want)
		}
		out := moved
		if stateDir != "" {
			if out, err = withStateDir(moved, stateDir); err != nil {
				t.Fatalf("hooks.d %s: %v", name, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// withStateDir adds `--state-dir dir` after the "hook" argument of a
// hooks.d file, keeping every other field as it is.
func withStateDir(file []byte, dir string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(file, &doc); err != nil {
		return nil, err
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(doc["hook"], &h); err != nil {
		return nil, fmt.Errorf("hook: %w", err)
	}
	var args []string
	if err := json.Unmarshal(h["args"], &args); err != nil {
		return nil, fmt.Errorf("hook.args: %w", err)
	}
	i := slices.Index(args, "hook")
	if i != 1 {
		return nil, fmt.Errorf("hook.args %q: want BINARY hook STAGE", args)
	}
	args = slices.Insert(args, i+1, "--state-dir", dir)
	var err error
	if h["args"], err = json.Marshal(args); err != nil {
		return nil, err
	}
	if doc["hook"], err = json.Marshal(h); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	return append(out, '\n'), err
}
