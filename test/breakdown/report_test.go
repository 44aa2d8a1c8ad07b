package breakdown

import "testing"

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		path string
		argv []string
		what string
		fg   bool
	}{
		{"/usr/bin/runc", []string{"runc", "--root", "/run/x", "create", "id"}, "runc create", false},
		{"/proc/self/exe", []string{"runc", "init"}, "runc init", false},
		// The lean wrapper, and the hook it injects (same binary).
		{"/usr/local/bin/fuseguard-runtime", []string{"/usr/local/bin/fuseguard-runtime", "--root", "/run/x", "kill", "id", "9"}, "fuseguard-runtime kill", true},
		{"/usr/local/bin/fuseguard-runtime", []string{"/usr/local/bin/fuseguard-runtime", "hook", "createRuntime"}, "fuseguard-runtime hook createRuntime", true},
		// The full binary's hook, and an older install's link.
		{"/usr/local/bin/fuseguard", []string{"/usr/local/bin/fuseguard", "hook", "--fail-closed", "poststop"}, "fuseguard hook poststop", true},
		{"/usr/local/bin/fuseguard", []string{"/usr/local/bin/fuseguard-runtime", "delete", "id"}, "fuseguard-runtime delete", true},
	} {
		what, fg := describe(Exec{Path: tc.path, Argv: tc.argv})
		if what != tc.what || fg != tc.fg {
			t.Errorf("describe(%s %q) = %q, %v; want %q, %v", tc.path, tc.argv, what, fg, tc.what, tc.fg)
		}
	}
}
