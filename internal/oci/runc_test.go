package oci

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fuseguard/fuseguard/test/testenv"
)

func TestParseRuncArgs(t *testing.T) {
	tests := []struct {
		args    string // split on spaces
		want    Invocation
		wantErr bool
	}{
		{
			args: "--root /run/docker/runtime-runc/moby --log /x --log-format json create --bundle /b --pid-file /p id",
			want: Invocation{GlobalFlags: sp("--root /run/docker/runtime-runc/moby --log /x --log-format json"), Command: "create",
				CommandArgs: sp("--bundle /b --pid-file /p id"), ContainerID: "id", Bundle: "/b"},
		},
		{
			args: "--root /r --log /l --log-format json --systemd-cgroup create --bundle /b --pid-file /p --console-socket /s --no-pivot --no-new-keyring --preserve-fds 2 id",
			want: Invocation{GlobalFlags: sp("--root /r --log /l --log-format json --systemd-cgroup"), Command: "create",
				CommandArgs: sp("--bundle /b --pid-file /p --console-socket /s --no-pivot --no-new-keyring --preserve-fds 2 id"), ContainerID: "id", Bundle: "/b"},
		},
		{args: "create -b create id", want: Invocation{Command: "create", CommandArgs: sp("-b create id"), ContainerID: "id", Bundle: "create"}},
		{args: "create --bundle=/b id", want: Invocation{Command: "create", CommandArgs: sp("--bundle=/b id"), ContainerID: "id", Bundle: "/b"}},
		{args: "create -b=/b id", want: Invocation{Command: "create", CommandArgs: sp("-b=/b id"), ContainerID: "id", Bundle: "/b"}},
		{args: "create id --bundle /b", want: Invocation{Command: "create", CommandArgs: sp("id --bundle /b"), ContainerID: "id", Bundle: "/b"}},
		{args: "create -b /one -b /two id", want: Invocation{Command: "create", CommandArgs: sp("-b /one -b /two id"), ContainerID: "id", Bundle: "/two"}},
		{args: "create -b /one --bundle /two id", want: Invocation{Command: "create", CommandArgs: sp("-b /one --bundle /two id")}, wantErr: true},
		// urfave/cli takes "id" for the value of --detach, so -b=/b is a second argument.
		{args: "run --detach id -b=/b", want: Invocation{Command: "run", CommandArgs: sp("--detach id -b=/b"), ContainerID: "id", BundleDefaulted: true}, wantErr: true},
		{args: "create -b /b -- id", want: Invocation{Command: "create", CommandArgs: sp("-b /b -- id"), ContainerID: "id", Bundle: "/b"}},
		{args: "create id", want: Invocation{Command: "create", CommandArgs: sp("id"), ContainerID: "id", BundleDefaulted: true}},
		{args: "create --pid-file -b id", want: Invocation{Command: "create", CommandArgs: sp("--pid-file -b id"), ContainerID: "id", BundleDefaulted: true}},
		{args: "--root create create --bundle create create", want: Invocation{GlobalFlags: sp("--root create"), Command: "create",
			CommandArgs: sp("--bundle create create"), ContainerID: "create", Bundle: "create"}},
		{args: "-root /r -debug create -bundle /b id", want: Invocation{GlobalFlags: sp("-root /r -debug"), Command: "create",
			CommandArgs: sp("-bundle /b id"), ContainerID: "id", Bundle: "/b"}},
		{args: "--root /r -- create -b /b id", want: Invocation{GlobalFlags: sp("--root /r --"), Command: "create",
			CommandArgs: sp("-b /b id"), ContainerID: "id", Bundle: "/b"}},
		{args: "--rootless=true --criu /usr/sbin/criu --debug=false run -d --keep -b /b id", want: Invocation{GlobalFlags: sp("--rootless=true --criu /usr/sbin/criu --debug=false"),
			Command: "run", CommandArgs: sp("-d --keep -b /b id"), ContainerID: "id", Bundle: "/b"}},
		{args: "run id", want: Invocation{Command: "run", CommandArgs: sp("id"), ContainerID: "id", BundleDefaulted: true}},

		{args: "--root=/r kill id 9", want: Invocation{GlobalFlags: sp("--root=/r"), Command: "kill", CommandArgs: sp("id 9"), ContainerID: "id", Signal: "9"}},
		{args: "kill id", want: Invocation{Command: "kill", CommandArgs: sp("id"), ContainerID: "id", Signal: "SIGTERM"}},
		{args: "kill id KILL", want: Invocation{Command: "kill", CommandArgs: sp("id KILL"), ContainerID: "id", Signal: "KILL"}},
		{args: "kill --all id SIGKILL", want: Invocation{Command: "kill", CommandArgs: sp("--all id SIGKILL"), ContainerID: "id", Signal: "SIGKILL", All: true}},
		{args: "kill -a id 15", want: Invocation{Command: "kill", CommandArgs: sp("-a id 15"), ContainerID: "id", Signal: "15", All: true}},
		{args: "kill id -a", want: Invocation{Command: "kill", CommandArgs: sp("id -a"), ContainerID: "id", Signal: "SIGTERM", All: true}},
		{args: "kill id 9 extra", want: Invocation{Command: "kill", CommandArgs: sp("id 9 extra"), ContainerID: "id", Signal: "9"}, wantErr: true},
		{args: "kill", want: Invocation{Command: "kill", CommandArgs: nil, Signal: "SIGTERM"}, wantErr: true},

		{args: "delete --force id", want: Invocation{Command: "delete", CommandArgs: sp("--force id"), ContainerID: "id", Force: true}},
		{args: "delete -f id", want: Invocation{Command: "delete", CommandArgs: sp("-f id"), ContainerID: "id", Force: true}},
		{args: "delete id --force", want: Invocation{Command: "delete", CommandArgs: sp("id --force"), ContainerID: "id", Force: true}},
		{args: "delete --force=false id", want: Invocation{Command: "delete", CommandArgs: sp("--force=false id"), ContainerID: "id"}},
		{args: "delete id", want: Invocation{Command: "delete", CommandArgs: sp("id"), ContainerID: "id"}},
		{args: "delete --force=maybe id", want: Invocation{Command: "delete", CommandArgs: sp("--force=maybe id")}, wantErr: true},
		{args: "delete -f --force id", want: Invocation{Command: "delete", CommandArgs: sp("-f --force id")}, wantErr: true},
		{args: "delete --bogus id", want: Invocation{Command: "delete", CommandArgs: sp("--bogus id"), ContainerID: "id", Unknown: sp("--bogus")}},
		{args: "delete --bogus -f", want: Invocation{Command: "delete", CommandArgs: sp("--bogus -f"), Force: true, Unknown: sp("--bogus")}, wantErr: true},

		// A newer runc's flags: known ones are parsed (--pidfd-socket since
		// runc 1.2), unknown ones are passed through and reported, and the
		// container id stays the last argument.
		{args: "--root /run/containerd/runc/k8s.io --log /l --log-format json create --bundle /b --pid-file /p --console-socket /c --pidfd-socket /s --no-pivot --no-new-keyring --preserve-fds 1 id",
			want: Invocation{GlobalFlags: sp("--root /run/containerd/runc/k8s.io --log /l --log-format json"), Command: "create",
				CommandArgs: sp("--bundle /b --pid-file /p --console-socket /c --pidfd-socket /s --no-pivot --no-new-keyring --preserve-fds 1 id"), ContainerID: "id", Bundle: "/b"}},
		{args: "run --bundle /b --pidfd-socket=/s --detach id", want: Invocation{Command: "run", CommandArgs: sp("--bundle /b --pidfd-socket=/s --detach id"), ContainerID: "id", Bundle: "/b"}},
		// containerd 2.4's runc shim under CRI, as recorded by test/cri's
		// containerd with runc 1.3 (RunPodSandbox, CreateContainer,
		// StartContainer, crictl exec, StopContainer, RemovePodSandbox).
		{args: c2 + "create --bundle " + c2Bundle + " --pid-file " + c2Bundle + "/init.pid " + c2ID,
			want: Invocation{GlobalFlags: sp(c2g), Command: "create", CommandArgs: sp("--bundle " + c2Bundle + " --pid-file " + c2Bundle + "/init.pid " + c2ID),
				ContainerID: c2ID, Bundle: c2Bundle}},
		{args: c2 + "start " + c2ID, want: Invocation{GlobalFlags: sp(c2g), Command: "start", CommandArgs: sp(c2ID), ContainerID: c2ID}},
		{args: c2 + "exec --process /tmp/runc-process3055019303 --detach --pid-file " + c2Bundle + "/e.pid " + c2ID,
			want: Invocation{GlobalFlags: sp(c2g), Command: "exec", CommandArgs: sp("--process /tmp/runc-process3055019303 --detach --pid-file " + c2Bundle + "/e.pid " + c2ID), ContainerID: c2ID}},
		{args: c2 + "kill " + c2ID + " 15", want: Invocation{GlobalFlags: sp(c2g), Command: "kill", CommandArgs: sp(c2ID + " 15"), ContainerID: c2ID, Signal: "15"}},
		{args: c2 + "kill " + c2ID + " 9", want: Invocation{GlobalFlags: sp(c2g), Command: "kill", CommandArgs: sp(c2ID + " 9"), ContainerID: c2ID, Signal: "9"}},
		{args: c2 + "kill --all " + c2ID + " 9", want: Invocation{GlobalFlags: sp(c2g), Command: "kill", CommandArgs: sp("--all " + c2ID + " 9"), ContainerID: c2ID, Signal: "9", All: true}},
		{args: c2 + "state " + c2ID, want: Invocation{GlobalFlags: sp(c2g), Command: "state", CommandArgs: sp(c2ID), ContainerID: c2ID}},
		{args: c2 + "delete " + c2ID, want: Invocation{GlobalFlags: sp(c2g), Command: "delete", CommandArgs: sp(c2ID), ContainerID: c2ID}},
		{args: c2 + "delete --force " + c2ID, want: Invocation{GlobalFlags: sp(c2g), Command: "delete", CommandArgs: sp("--force " + c2ID), ContainerID: c2ID, Force: true}},

		{args: "create --bundle /b --future-socket /s --pid-file /p id", want: Invocation{Command: "create",
			CommandArgs: sp("--bundle /b --future-socket /s --pid-file /p id"), ContainerID: "id", Bundle: "/b", Unknown: sp("--future-socket /s")}},
		{args: "create --bundle /b --future-bool id", want: Invocation{Command: "create",
			CommandArgs: sp("--bundle /b --future-bool id"), ContainerID: "id", Bundle: "/b", Unknown: sp("--future-bool")}},
		{args: "create --future=x -b /b id", want: Invocation{Command: "create",
			CommandArgs: sp("--future=x -b /b id"), ContainerID: "id", Bundle: "/b", Unknown: sp("--future=x")}},
		{args: "create --future x y -b /b id", want: Invocation{Command: "create",
			CommandArgs: sp("--future x y -b /b id"), ContainerID: "y", Bundle: "/b", Unknown: sp("--future x")}, wantErr: true},
		{args: "create --future -- id", want: Invocation{Command: "create",
			CommandArgs: sp("--future -- id"), ContainerID: "id", BundleDefaulted: true, Unknown: sp("--future")}},
		{args: "kill --future id KILL", want: Invocation{Command: "kill", CommandArgs: sp("--future id KILL"), ContainerID: "id", Signal: "KILL", Unknown: sp("--future")}},
		{args: "create -b /b --future", want: Invocation{Command: "create", CommandArgs: sp("-b /b --future"), Bundle: "/b", Unknown: sp("--future")}, wantErr: true},

		{args: "state id", want: Invocation{Command: "state", CommandArgs: sp("id"), ContainerID: "id"}},
		{args: "start id", want: Invocation{Command: "start", CommandArgs: sp("id"), ContainerID: "id"}},
		{args: "start", want: Invocation{Command: "start", CommandArgs: nil}, wantErr: true},
		{args: "state a b", want: Invocation{Command: "state", CommandArgs: sp("a b"), ContainerID: "a"}, wantErr: true},
		{args: "exec --process /p.json --detach --pid-file /p id", want: Invocation{Command: "exec", CommandArgs: sp("--process /p.json --detach --pid-file /p id"), ContainerID: "id"}},
		{args: "exec -t id ls -l --cwd", want: Invocation{Command: "exec", CommandArgs: sp("-t id ls -l --cwd"), ContainerID: "id"}},
		{args: "ps id -ef", want: Invocation{Command: "ps", CommandArgs: sp("id -ef"), ContainerID: "id"}},
		{args: "pause id", want: Invocation{Command: "pause", CommandArgs: sp("id"), ContainerID: "id"}},
		{args: "restore -b /b --image-path /i id", want: Invocation{Command: "restore", CommandArgs: sp("-b /b --image-path /i id"), ContainerID: "id", Bundle: "/b"}},
		{args: "list -f json", want: Invocation{Command: "list", CommandArgs: sp("-f json")}},
		{args: "features", want: Invocation{Command: "features", CommandArgs: nil}},

		{args: "frobnicate --whatever x y", want: Invocation{Command: "frobnicate", CommandArgs: sp("--whatever x y")}},
		{args: "--root /r help create", want: Invocation{GlobalFlags: sp("--root /r"), Command: "help", CommandArgs: sp("create")}},
		{args: "--version", want: Invocation{GlobalFlags: sp("--version"), Help: true}},
		{args: "-h kill id 9", want: Invocation{GlobalFlags: sp("-h"), Command: "kill", CommandArgs: sp("id 9"), Help: true}},
		{args: "create --help", want: Invocation{Command: "create", CommandArgs: sp("--help"), BundleDefaulted: true, Help: true}},
		{args: "", want: Invocation{}},
		{args: "--root=  state", want: Invocation{GlobalFlags: sp("--root="), CommandArgs: []string{"state"}}}, // an empty subcommand

		{args: "--root", want: Invocation{}, wantErr: true},
		{args: "--bogus create id", want: Invocation{}, wantErr: true},
		{args: "-b /b create id", want: Invocation{}, wantErr: true},
		{args: "---root /r create id", want: Invocation{}, wantErr: true},
		{args: "create --bundle", want: Invocation{Command: "create", CommandArgs: sp("--bundle")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			args := sp(tt.args)
			orig := slices.Clone(args)
			got, err := ParseRuncArgs(args)
			if !slices.Equal(args, orig) {
				t.Fatalf("argv modified: %q -> %q", orig, args)
			}
			if tt.wantErr {
				if !errors.Is(err, ErrUsage) {
					t.Errorf("err = %v, want ErrUsage", err)
				}
			} else if err != nil {
				t.Fatalf("ParseRuncArgs: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseRuncArgs(%q)\n got %+v\nwant %+v", tt.args, got, tt.want)
			}
			if !tt.wantErr || got.Command != "" {
				checkPassThrough(t, args, got)
			}
		})
	}
}

// checkPassThrough: global flags, command and its arguments are argv
// itself, in order.
func checkPassThrough(t testing.TB, args []string, inv Invocation) {
	t.Helper()
	if len(inv.GlobalFlags) == len(args) {
		if !slices.Equal(inv.GlobalFlags, args) || inv.Command != "" || inv.CommandArgs != nil {
			t.Errorf("argv %q parsed as flags %q, command %q %q", args, inv.GlobalFlags, inv.Command, inv.CommandArgs)
		}
		return
	}
	joined := append(append(slices.Clone(inv.GlobalFlags), inv.Command), inv.CommandArgs...)
	if !slices.Equal(joined, args) {
		t.Errorf("GlobalFlags+Command+CommandArgs = %q, argv %q", joined, args)
	}
}

// sp splits a test command line on spaces; "" is an empty argv.
// containerd 2's global flags (c2g; c2 is them and a space) and paths
// for the runc shim.
const (
	c2ID     = "6ac5592097ac887ed3c1dc074ad598017e37cc0aca40b927b4a89748b0bc3ce4"
	c2Bundle = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + c2ID
	c2g      = "--root /run/containerd/runc/k8s.io --log " + c2Bundle + "/log.json --log-format json"
	c2       = c2g + " "
)

func sp(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, " ")
}

func TestIsSIGKILL(t *testing.T) {
	for sig, want := range map[string]bool{
		"9": true, "KILL": true, "SIGKILL": true, "kill": true, "sigkill": true, "SigKill": true, "+9": true, "09": true,
		"SIGTERM": false, "15": false, "TERM": false, "": false, "SIGKILLX": false, "SIG": false, "-9": false, "99": false, " 9": false,
	} {
		if got := IsSIGKILL(sig); got != want {
			t.Errorf("IsSIGKILL(%q) = %v, want %v", sig, got, want)
		}
	}
}

// runcFlagsSince are the subcommand flags runc gained after 1.1, with the
// minor version of 1.x that added them; ParseRuncArgs knows them all.
var runcFlagsSince = map[string]int{"pidfd-socket": 2}

// flagNewerThan returns the first flag of args that runc (version
// 1.minor) does not have yet, or "".
func flagNewerThan(args []string, minor int) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		if since, ok := runcFlagsSince[flagName(a)]; ok && minor < since {
			return flagName(a)
		}
	}
	return ""
}

// runcRefused reports whether runc's output msg is urfave/cli's usage
// error: a flag runc does not define ("flag provided but not defined"),
// or, when the flag comes after the container id, an argument too many.
func runcRefused(msg string) bool {
	return strings.Contains(msg, "Incorrect Usage")
}

// runcMinor is the minor version of runc 1.x, failing t for another major.
func runcMinor(t *testing.T, runc string) int {
	t.Helper()
	major, minor := testenv.RuncVersion(t, runc)
	if major != 1 {
		t.Fatalf("%s is runc %d.%d, want 1.x", runc, major, minor)
	}
	return minor
}

// TestParseRuncArgsBundleLikeRunc runs each real runc (testenv.Runcs) on
// each command line with a bundle that does not exist and compares the
// directory runc tries to enter with the parsed Bundle. A flag the parser
// reports as unknown must be one runc rejects too; a flag newer than the
// runc (--pidfd-socket before 1.2) is rejected by it.
func TestParseRuncArgsBundleLikeRunc(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.ForEachRunc(t, testParseRuncArgsBundleLikeRunc)
}

func testParseRuncArgsBundleLikeRunc(t *testing.T, runc string) {
	minor := runcMinor(t, runc)
	root, cwd := t.TempDir(), t.TempDir() // cwd: an empty bundle, so a default bundle fails on config.json
	log := filepath.Join(t.TempDir(), "runc.log")
	chdir := regexp.MustCompile(`chdir ([^:" ]+): no such file`)
	for _, line := range []string{
		"create --bundle /nonexistent/b1 id",
		"create -b /nonexistent/b2 id",
		"create --bundle=/nonexistent/b3 id",
		"create -b=/nonexistent/b4 id",
		"create id --bundle /nonexistent/b5",
		"create --pid-file /nonexistent/p --console-socket /nonexistent/s --no-pivot --no-new-keyring --preserve-fds 0 -b /nonexistent/b6 id",
		"create -b create id",
		"create -b /nonexistent/b7 --bundle /nonexistent/b8 id",
		"create -b /nonexistent/b7 -b /nonexistent/b8 id",
		"create -b /nonexistent/b9 -- id",
		"create id",
		"create --pid-file -b id",
		"--log " + log + " --log-format json create --bundle /nonexistent/b10 --pid-file /nonexistent/p id",
		"--debug create -bundle /nonexistent/b11 id",
		"run -d -b /nonexistent/b12 id",
		"run --detach id -b=/nonexistent/b13",
		// runc ≥ 1.2: containerd 2's create, and the flag elsewhere.
		"--log " + log + " --log-format json create --bundle /nonexistent/b14 --pid-file /nonexistent/p --pidfd-socket /nonexistent/s id",
		"create --pidfd-socket /nonexistent/s -b /nonexistent/b15 id",
		"create id --pidfd-socket=/nonexistent/s --bundle /nonexistent/b16",
		"run -d --pidfd-socket=/nonexistent/s id -b /nonexistent/b17",
		"create --pidfd-socket -b id",
		// Flags no runc has: unknown here, rejected by runc.
		"create --future-flag x --bundle /nonexistent/b18 id",
		"create --bundle /nonexistent/b19 --future-bool id",
		"create --future=x -b /nonexistent/b20 id",
	} {
		t.Run(line, func(t *testing.T) {
			args := append([]string{"--root", root}, sp(line)...)
			inv, parseErr := ParseRuncArgs(args)
			cmd := exec.Command(runc, args...)
			cmd.Dir = cwd
			out, runErr := cmd.CombinedOutput()
			if runErr == nil {
				t.Fatalf("runc succeeded on a missing bundle: %s", out)
			}
			logged, _ := os.ReadFile(log)
			os.Remove(log)
			msg := string(out) + string(logged)
			m := chdir.FindStringSubmatch(msg)
			wentForBundle := m != nil || strings.Contains(msg, "config.json not found")
			switch newer := flagNewerThan(args, minor); {
			case parseErr != nil:
				// Rejected here, so runc must reject it before any bundle.
				if wentForBundle {
					t.Errorf("parse error %v, but runc went for the bundle: %s", parseErr, msg)
				}
			case newer != "":
				if wentForBundle || !runcRefused(msg) {
					t.Errorf("runc 1.%d should refuse --%s, said: %s", minor, newer, msg)
				}
			case len(inv.Unknown) > 0:
				if wentForBundle || !runcRefused(msg) {
					t.Errorf("parsed %q as unknown, but runc said: %s", inv.Unknown, msg)
				}
			case inv.BundleDefaulted:
				if m != nil || !strings.Contains(msg, "config.json not found") {
					t.Errorf("parsed a default bundle, runc said: %s", msg)
				}
			case m == nil:
				t.Errorf("parsed bundle %q, runc said: %s", inv.Bundle, msg)
			case m[1] != inv.Bundle:
				t.Errorf("parsed bundle %q, runc entered %q", inv.Bundle, m[1])
			}
		})
	}
}

// TestParseRuncArgsDeleteLikeRunc runs each real runc's `delete` on
// containers that have a directory but no state.json: runc removes
// <root>/<id> and succeeds only with --force, so the directory that
// disappears and the exit status tell which root, id and force runc parsed.
// A line with a flag the parser reports as unknown must be one runc
// rejects, removing nothing.
func TestParseRuncArgsDeleteLikeRunc(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.ForEachRunc(t, testParseRuncArgsDeleteLikeRunc)
}

func testParseRuncArgsDeleteLikeRunc(t *testing.T, runc string) {
	ids := []string{"id", "x", "y", "9"}
	for _, line := range []string{
		"--root ROOT delete --force id",
		"--root=ROOT delete -f id",
		"-root ROOT delete id --force",
		"--root ROOT --log-format json delete --force=true id",
		"--root ROOT delete --force=false id",
		"--root ROOT delete id",
		"--root ROOT delete -f -- x",
		"--root ROOT delete x -f y",
		"--root ROOT delete -f x y",
		"--root ROOT delete -f --force x",
		"--debug --root ROOT delete -f 9",
		"--root ROOT delete --future -f id",
		"--root ROOT delete --future x --force y",
	} {
		t.Run(line, func(t *testing.T) {
			root := t.TempDir()
			for _, id := range ids {
				if err := os.Mkdir(filepath.Join(root, id), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			args := sp(strings.ReplaceAll(line, "ROOT", root))
			inv, parseErr := ParseRuncArgs(args)
			out, runErr := exec.Command(runc, args...).CombinedOutput()
			var removed []string
			for _, id := range ids {
				if _, err := os.Stat(filepath.Join(root, id)); errors.Is(err, os.ErrNotExist) {
					removed = append(removed, id)
				}
			}
			understood := parseErr == nil && len(inv.Unknown) == 0
			var want []string
			if understood {
				want = []string{inv.ContainerID}
			}
			if !slices.Equal(removed, want) {
				t.Errorf("runc removed %q, parse (id=%q err=%v unknown=%q) predicts %q; runc said %s",
					removed, inv.ContainerID, parseErr, inv.Unknown, want, out)
			}
			if wantOK := understood && inv.Force; (runErr == nil) != wantOK {
				t.Errorf("runc exit %v, parse (force=%v err=%v unknown=%q) predicts success=%v; runc said %s",
					runErr, inv.Force, parseErr, inv.Unknown, wantOK, out)
			}
			if len(inv.Unknown) > 0 && !runcRefused(string(out)) {
				t.Errorf("parsed %q as unknown, but runc said: %s", inv.Unknown, out)
			}
		})
	}
}

func FuzzParseRuncArgs(f *testing.F) {
	for _, s := range []string{
		"--root /run/docker/runtime-runc/moby --log /x --log-format json create --bundle /b --pid-file /p id",
		"--root=/r kill id 9", "delete --force id", "create -b create id", "kill --all id SIGKILL",
		"exec -t id sh", "--root -- state id", "create id -b", "kill -a -- x", "---x", "create --bundle=",
	} {
		f.Add(strings.ReplaceAll(s, " ", "\x00"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		orig := slices.Clone(args)
		inv, err := ParseRuncArgs(args)
		if !slices.Equal(args, orig) {
			t.Fatalf("argv modified: %q -> %q", orig, args)
		}
		if err != nil && !errors.Is(err, ErrUsage) {
			t.Fatalf("error without ErrUsage: %v", err)
		}
		if err == nil {
			checkPassThrough(t, args, inv)
			if _, known := runcSubcommand(inv.Command); known && !inv.Help && inv.Command != "list" &&
				inv.Command != "spec" && inv.Command != "features" && inv.ContainerID == "" {
				t.Fatalf("%s parsed without a container id: %q", inv.Command, args)
			}
			if inv.Command == "kill" && !inv.Help && inv.Signal == "" {
				t.Fatal("kill without a signal")
			}
		}
	})
}
