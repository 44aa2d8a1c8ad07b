package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/doctor"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fgwatch"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// deployConfigs installs the repo's deploy/ files into a temp dir the way
// deploy/install.sh does, with /usr/local/bin/ rewritten to the test
// binary's dir (where fuseguard and fuseguard-runtime are), and returns
// the doctor flags that point at them.
func deployConfigs(t *testing.T) []string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Dir(fgcmd.Runtime(t)) + "/"
	dir := t.TempDir()
	install := func(src, dst string) {
		b, err := os.ReadFile(filepath.Join(root, "deploy", src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/", binDir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	install("docker/daemon.default-runtime.json", filepath.Join(dir, "docker", "daemon.json"))
	install("containerd/fuseguard.toml", filepath.Join(dir, "containerd", "conf.d", "fuseguard.toml"))
	if err := os.WriteFile(filepath.Join(dir, "containerd", "config.toml"), []byte("version = 3\nimports = ['/nonexistent/*.toml', 'conf.d/*.toml']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hooks, err := filepath.Glob(filepath.Join(root, "deploy", "hooks.d", "*.json"))
	if err != nil || len(hooks) == 0 {
		t.Fatalf("deploy/hooks.d: %v %v", hooks, err)
	}
	for _, h := range hooks {
		install(filepath.Join("hooks.d", filepath.Base(h)), filepath.Join(dir, "hooks.d", filepath.Base(h)))
	}
	return []string{
		"--docker-config", filepath.Join(dir, "docker", "daemon.json"),
		"--containerd-config", filepath.Join(dir, "containerd", "config.toml"),
		"--hooks-dir", filepath.Join(dir, "absent-hooks.d"),
		"--hooks-dir", filepath.Join(dir, "hooks.d"),
	}
}

// doctorJSON runs `fuseguard doctor --json args…` and returns its report
// by check name, and the exit code.
func doctorJSON(t *testing.T, args ...string) (map[string]doctor.Check, int) {
	t.Helper()
	stdout, stderr, code := fg(t, append([]string{"doctor", "--json"}, args...)...)
	var r doctor.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("doctor --json: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	byName := map[string]doctor.Check{}
	failed := false
	for _, c := range r.Checks {
		byName[c.Name] = c
		failed = failed || c.Status == doctor.Fail
	}
	if r.OK == failed {
		t.Errorf("ok = %v with a failed check %v", r.OK, failed)
	}
	if want := map[bool]int{false: exitOK, true: exitFailure}[failed]; code != want {
		t.Errorf("exit %d with failed check %v, want %d\n%s", code, failed, want, stdout)
	}
	return byName, code
}

// doctorWant is a check's expected status and a fragment of its detail.
type doctorWant struct {
	status doctor.Status
	detail string
}

// machineExpectations computes, independently of the doctor package, the
// status each kernel check must have on this machine, and a fragment of
// its detail.
func machineExpectations(t *testing.T) map[string]doctorWant {
	t.Helper()
	m := map[string]doctorWant{}
	if os.Geteuid() == 0 {
		m["root"] = doctorWant{doctor.OK, "uid 0"}
	} else {
		m["root"] = doctorWant{doctor.Fail, fmt.Sprintf("uid %d", os.Geteuid())}
	}
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err == nil {
		f.Close()
		m["/dev/fuse"] = doctorWant{doctor.OK, "read-write"}
	} else {
		m["/dev/fuse"] = doctorWant{doctor.Fail, ""}
	}
	var st unix.Statfs_t
	fsTypes, _ := os.ReadFile("/proc/filesystems")
	switch {
	case unix.Statfs(fuseconn.DefaultFusectlDir, &st) == nil && uint32(st.Type) == fuseconn.FusectlMagic:
		m["fusectl"] = doctorWant{doctor.OK, "mounted on " + fuseconn.DefaultFusectlDir}
	case strings.Contains(string(fsTypes), "\tfusectl\n"):
		m["fusectl"] = doctorWant{doctor.OK, "not mounted"}
	default:
		m["fusectl"] = doctorWant{doctor.Fail, "not mounted"}
	}
	// This thread's own stack and syscall: readable exactly when another
	// thread's are, for the same process.
	_, errStack := os.ReadFile("/proc/thread-self/stack")
	_, errSys := os.ReadFile("/proc/thread-self/syscall")
	if errStack == nil && errSys == nil {
		m["/proc stack and syscall"] = doctorWant{doctor.OK, "stack"}
	} else {
		m["/proc stack and syscall"] = doctorWant{doctor.Fail, ""}
	}
	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err == nil {
		unix.Close(fd)
		m["pidfd"] = doctorWant{doctor.OK, "pidfd_open works"}
	} else {
		m["pidfd"] = doctorWant{doctor.Fail, ""}
	}
	maxTimeout, err := os.ReadFile(filepath.Join(doctor.DefaultFuseSysctlDir, "max_request_timeout"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		m["kernel FUSE request timeouts"] = doctorWant{doctor.OK, "not available on this kernel"}
	case err != nil:
		t.Fatal(err)
	default:
		v := strings.TrimSpace(string(maxTimeout))
		if v == "0" {
			v = "0 (off)"
		} else {
			v += "s"
		}
		m["kernel FUSE request timeouts"] = doctorWant{doctor.OK, "fs.fuse.max_request_timeout=" + v + ": a kernel timeout aborts"}
	}
	return m
}

// TestDoctorOnThisMachine runs fuseguard doctor against the repo's deploy
// files, a healthy state dir and a running watcher: every check must say
// what this machine is.
func TestDoctorOnThisMachine(t *testing.T) {
	testenv.RequireRoot(t)
	configs := deployConfigs(t)
	dir := testenv.StateDir(t)
	pid := fgwatch.StartWatcher(t, dir, "watch.log")
	checks, _ := doctorJSON(t, append(configs, "--state-dir", dir)...)

	wants := machineExpectations(t)
	wants["docker runtime"] = doctorWant{doctor.OK, "(default)"}
	wants["containerd runtime"] = doctorWant{doctor.OK, "runtime fuseguard in "}
	wants["OCI hooks.d"] = doctorWant{doctor.OK, "fuseguard-poststop.json"}
	wants["runtime registered"] = doctorWant{doctor.OK, "docker, containerd, hooks.d"}
	wants["watcher"] = doctorWant{doctor.OK, fmt.Sprintf("pid %d", pid)}
	wants["state dir"] = doctorWant{doctor.OK, "mode 0700"}
	if err := watch.ProbeExitEvents(); err != nil {
		wants["exit notifications"] = doctorWant{doctor.Warn, "polls every init"}
	} else {
		wants["exit notifications"] = doctorWant{doctor.OK, "taskstats exit notifications work"}
	}
	for name, w := range wants {
		c, ok := checks[name]
		if !ok {
			t.Errorf("no check %q in the report", name)
			continue
		}
		if c.Status != w.status || !strings.Contains(c.Detail, w.detail) {
			t.Errorf("%s: %s %q, want %s with %q", name, c.Status, c.Detail, w.status, w.detail)
		}
		if (c.Status != doctor.OK) != (c.Fix != "") {
			t.Errorf("%s: fix %q with status %s", name, c.Fix, c.Status)
		}
	}
	if len(checks) != len(wants) {
		t.Errorf("%d checks, want %d: %v", len(checks), len(wants), checks)
	}
}

// TestDoctorUnsafeStateDirFails: a state dir others can read fails the
// check and the command; no watcher is a warning only.
func TestDoctorUnsafeStateDirFails(t *testing.T) {
	testenv.RequireRoot(t)
	configs := deployConfigs(t)
	dir := testenv.StateDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	checks, code := doctorJSON(t, append(configs, "--state-dir", dir)...)
	if c := checks["state dir"]; c.Status != doctor.Fail || !strings.Contains(c.Detail, "0755") || c.Fix == "" {
		t.Errorf("state dir: %+v, want fail naming mode 0755, with a fix", c)
	}
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	if c := checks["watcher"]; c.Status != doctor.Warn || !strings.Contains(c.Detail, "no watcher") || c.Fix == "" {
		t.Errorf("watcher: %+v, want warn: no watcher, with a fix", c)
	}

	// The screen says the same, one line per check.
	stdout, _, code := fg(t, append([]string{"doctor"}, append(configs, "--state-dir", dir)...)...)
	if code != exitFailure || !strings.Contains(stdout, "fail  state dir") || !strings.Contains(stdout, "warn  watcher") ||
		!strings.Contains(stdout, "cannot be protected") {
		t.Errorf("doctor: exit %d\n%s", code, stdout)
	}
}

// TestDoctorNoRuntimeFails: with no runtime registered anywhere, the
// aggregate check fails and so does the command.
func TestDoctorNoRuntimeFails(t *testing.T) {
	testenv.RequireRoot(t)
	empty := t.TempDir()
	checks, code := doctorJSON(t, "--state-dir", testenv.StateDir(t),
		"--docker-config", filepath.Join(empty, "daemon.json"),
		"--containerd-config", filepath.Join(empty, "config.toml"),
		"--hooks-dir", empty)
	for _, name := range []string{"docker runtime", "containerd runtime", "OCI hooks.d"} {
		if c := checks[name]; c.Status != doctor.Warn {
			t.Errorf("%s: %+v, want warn", name, c)
		}
	}
	if c := checks["runtime registered"]; c.Status != doctor.Fail {
		t.Errorf("runtime registered: %+v, want fail", c)
	}
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
}
