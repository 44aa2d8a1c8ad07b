package wrapper

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fuseguard/fuseguard/internal/oci"
)

func TestGlobalRoot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"none", nil, ""},
		{"separate", []string{"--root", "/r"}, "/r"},
		{"equals", []string{"--root=/r"}, "/r"},
		{"single dash", []string{"-root", "/r"}, "/r"},
		{"after others", []string{"--log", "/l", "--log-format", "json", "--systemd-cgroup", "--root", "/r"}, "/r"},
		{"last wins", []string{"--root", "/a", "--root=/b"}, "/b"},
		{"value of --log is not a flag", []string{"--log", "--root=/x"}, ""},
		{"missing value", []string{"--root"}, ""},
		{"after --", []string{"--", "--root", "/r"}, "/r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := globalRoot(tc.flags); got != tc.want {
				t.Errorf("globalRoot(%q) = %q, want %q", tc.flags, got, tc.want)
			}
		})
	}
}

func TestRuntimeForgot(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "alive"), 0o700); err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) oci.Invocation {
		inv, err := oci.ParseRuncArgs(args)
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	for _, tc := range []struct {
		name string
		inv  oci.Invocation
		want bool
	}{
		{"deleted", parse("--root", root, "delete", "--force", "gone"), true},
		{"still there", parse("--root", root, "delete", "--force", "alive"), false},
		{"no --root: ask the runtime", parse("delete", "--force", "gone"), false},
		{"id with a path: ask the runtime", parse("--root", root, "delete", "--force", "../gone"), false},
		{"root unreadable as a path: ask", parse("--root", filepath.Join(root, "alive", "x\x00"), "delete", "gone"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runtimeForgot(tc.inv); got != tc.want {
				t.Errorf("runtimeForgot(%+v) = %v, want %v", tc.inv, got, tc.want)
			}
		})
	}
}
