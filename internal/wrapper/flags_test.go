package wrapper

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/oci"
)

func TestStripFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want Flags
		rest []string
		err  error
	}{
		{"none", []string{"--root", "/r", "kill", "id", "9"}, Flags{}, []string{"--root", "/r", "kill", "id", "9"}, nil},
		{"first", []string{"--fuseguard-state-dir", "/s", "--root", "/r", "create", "--bundle", "b", "id"},
			Flags{StateDir: "/s"}, []string{"--root", "/r", "create", "--bundle", "b", "id"}, nil},
		{"equals-and-between", []string{"--log", "/l", "--fuseguard-runtime=/usr/bin/runc", "--systemd-cgroup", "--fuseguard-verify-timeout", "1s", "--fuseguard-recover-timeout=3s", "state", "x"},
			Flags{Runtime: "/usr/bin/runc", VerifyTimeout: time.Second, RecoverTimeout: 3 * time.Second}, []string{"--log", "/l", "--systemd-cgroup", "state", "x"}, nil},
		// A global flag's value that looks like ours is its value, not our flag.
		{"value-of-global", []string{"--root", "--fuseguard-runtime=x", "list"}, Flags{}, []string{"--root", "--fuseguard-runtime=x", "list"}, nil},
		{"root-equals", []string{"-root=/r", "--fuseguard-state-dir=/s", "list"}, Flags{StateDir: "/s"}, []string{"-root=/r", "list"}, nil},
		// After the subcommand nothing is ours: a container's args pass.
		{"after-subcommand", []string{"exec", "id", "--fuseguard-runtime=x"}, Flags{}, []string{"exec", "id", "--fuseguard-runtime=x"}, nil},
		{"after-double-dash", []string{"--", "--fuseguard-runtime=x"}, Flags{}, []string{"--", "--fuseguard-runtime=x"}, nil},
		{"empty", nil, Flags{}, []string{}, nil},
		{"only-ours", []string{"--fuseguard-state-dir=/s"}, Flags{StateDir: "/s"}, []string{}, nil},
		{"unknown", []string{"--fuseguard-bogus", "x", "list"}, Flags{}, nil, oci.ErrUsage},
		{"missing-value", []string{"--fuseguard-runtime"}, Flags{}, nil, oci.ErrUsage},
		{"empty-value", []string{"--fuseguard-runtime=", "list"}, Flags{}, nil, oci.ErrUsage},
		{"bad-duration", []string{"--fuseguard-verify-timeout=soon", "list"}, Flags{}, nil, oci.ErrUsage},
		{"zero-duration", []string{"--fuseguard-recover-timeout=0s", "list"}, Flags{}, nil, oci.ErrUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := slices.Clone(tc.args)
			f, rest, err := StripFlags(tc.args)
			if !slices.Equal(tc.args, orig) {
				t.Fatalf("args modified: %q", tc.args)
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f != tc.want || !slices.Equal(rest, tc.rest) {
				t.Fatalf("got %+v %q, want %+v %q", f, rest, tc.want, tc.rest)
			}
		})
	}
}

// FuzzStripFlags: on success the rest is args minus whole flags of ours,
// in order, and from the subcommand on args are untouched.
func FuzzStripFlags(f *testing.F) {
	f.Add("--fuseguard-state-dir\x00/s\x00--root\x00/r\x00kill\x00id\x009")
	f.Add("--log\x00--fuseguard-runtime=x\x00create\x00--fuseguard-runtime=y")
	f.Add("--fuseguard-verify-timeout=1s\x00--\x00list")
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		orig := slices.Clone(args)
		_, rest, err := StripFlags(args)
		if !slices.Equal(args, orig) {
			t.Fatalf("args modified")
		}
		if err != nil {
			if !errors.Is(err, oci.ErrUsage) {
				t.Fatalf("error %v does not wrap oci.ErrUsage", err)
			}
			return
		}
		// rest is a subsequence of args.
		j := 0
		for _, a := range args {
			if j < len(rest) && rest[j] == a {
				j++
			}
		}
		if j != len(rest) {
			t.Fatalf("rest %q is not a subsequence of %q", rest, args)
		}
		// Stripping again finds nothing more (ours are all gone).
		f2, rest2, err := StripFlags(rest)
		if err != nil || f2 != (Flags{}) || !slices.Equal(rest2, rest) {
			t.Fatalf("second strip of %q: %+v %q %v", rest, f2, rest2, err)
		}
	})
}

func TestResolveRuntime(t *testing.T) {
	sh, err := ResolveRuntime("sh", "")
	if err != nil || !strings.HasPrefix(sh, "/") {
		t.Fatalf("sh: %q %v", sh, err)
	}
	if _, err := ResolveRuntime(sh, "", "/nonexistent/fuseguard", sh); !errors.Is(err, ErrRuntimeIsSelf) {
		t.Fatalf("runtime = self: %v, want ErrRuntimeIsSelf", err)
	}
	if _, err := ResolveRuntime("/nonexistent/runc", ""); err == nil || !strings.Contains(err.Error(), "/nonexistent/runc") {
		t.Fatalf("missing runtime: %v", err)
	}
}
