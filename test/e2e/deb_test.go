package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/doctor"
	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// debBinary is where the Debian package installs fuseguard.
const debBinary = "/usr/bin/fuseguard"

// debStateDir is the state directory the package's purge removes.
const debStateDir = "/run/fuseguard"

// debConfig is the node configuration the package installs as a conffile.
const debConfig = "/etc/fuseguard/config.toml"

// debEntry is one member of the package's data archive (`dpkg-deb -c`).
type debEntry struct {
	mode string // as ls prints it: -rwxr-xr-x, lrwxrwxrwx, drwxr-xr-x
	link string // symlink target
}

// debFile is a non-directory member the package must hold.
type debFile struct {
	mode string
	link string
}

// wantDebFiles lists every file and link of the package: the layout of
// `make install` under /usr, the unit, the hooks in the vendor hooks.d, and
// the node configuration, the one file under /etc (a conffile).
func wantDebFiles() map[string]debFile {
	want := map[string]debFile{
		"/usr/bin/fuseguard":                              {mode: "-rwxr-xr-x"},
		"/usr/bin/fuseguard-runtime":                      {mode: "-rwxr-xr-x"},
		"/usr/lib/systemd/system/fuseguard-watch.service": {mode: "-rw-r--r--"},
		debConfig: {mode: "-rw-r--r--"},
	}
	for _, stage := range oci.Stages() {
		want["/usr/share/containers/oci/hooks.d/fuseguard-"+string(stage)+".json"] = debFile{mode: "-rw-r--r--"}
	}
	for _, name := range []string{"docker-daemon.json", "docker-daemon.default-runtime.json",
		"containerd-fuseguard.toml", "containerd-fuseguard-default.toml"} {
		want["/usr/share/doc/fuseguard/examples/"+name] = debFile{mode: "-rw-r--r--"}
	}
	return want
}

// TestDebVersion checks scripts/deb-version.sh (the Makefile's VERSION made
// a Debian version) against dpkg's own ordering: a build after a tag sorts
// after it, a release candidate and an untagged build before the release.
func TestDebVersion(t *testing.T) {
	dpkg := testenv.RequireBinary(t, "dpkg")
	script := filepath.Join(deployDir(t), "..", "scripts", "deb-version.sh")
	for _, tc := range []struct {
		describe string
		op, than string // dpkg --compare-versions <result> op than
	}{
		{"v1.2.3", "eq", "1.2.3"},
		{"1.2.3", "eq", "1.2.3"},
		{"v1.2.3-4-gabc1234", "gt", "1.2.3"},
		{"v1.2.3-4-gabc1234", "lt", "1.2.4"},
		{"v1.2.3-rc1", "lt", "1.2.3"},
		{"v1.2.3-rc1", "gt", "1.2.2"},
		{"v1.2.3-rc1-2-g0123abc", "gt", "1.2.3~rc1"},
		{"v1.2.3-rc1-2-g0123abc", "lt", "1.2.3"},
		{"abc1234", "lt", "0.0.0"},
		{"0123456", "lt", "0.0.0"},
		{"abc1234-dirty", "gt", "0.0.0~gitabc1234"},
		{"devel", "lt", "0.0.0"},
	} {
		r := run(t, 10*time.Second, nil, nil, script, tc.describe)
		if r.code != 0 {
			t.Errorf("deb-version.sh %s: exit %d: %s", tc.describe, r.code, r.stderr)
			continue
		}
		v := strings.TrimSpace(r.stdout)
		// dpkg warns on stderr about a version of bad syntax.
		c := run(t, 10*time.Second, nil, nil, dpkg, "--compare-versions", v, tc.op, tc.than)
		if c.code != 0 || c.stderr != "" {
			t.Errorf("deb-version.sh %s = %q: not %s %s by dpkg (exit %d) %s", tc.describe, v, tc.op, tc.than, c.code, c.stderr)
		}
	}
}

// TestDebPackage inspects the package `make deb` built, installs it for
// real with dpkg on this machine, runs the installed fuseguard (also as the
// runtime of a private dockerd), removes and purges it, and checks that the
// machine is left as found and that no dockerd or containerd was restarted.
// It refuses to run where anything of the package is already installed.
func TestDebPackage(t *testing.T) {
	testenv.RequireRoot(t)
	dpkg := testenv.RequireBinary(t, "dpkg")
	dpkgDeb := testenv.RequireBinary(t, "dpkg-deb")
	dpkgQuery := testenv.RequireBinary(t, "dpkg-query")
	deb := testenv.RequireArtifact(t, "dist/fuseguard_*_amd64.deb", "deb")
	want := wantDebFiles()

	// The control fields; the file name carries the version.
	fields := run(t, 30*time.Second, nil, nil, dpkgDeb, "-f", deb, "Package", "Version", "Architecture")
	if fields.code != 0 {
		t.Fatalf("dpkg-deb -f: exit %d: %s", fields.code, fields.stderr)
	}
	version := controlField(fields.stdout, "Version")
	if controlField(fields.stdout, "Package") != "fuseguard" || controlField(fields.stdout, "Architecture") != "amd64" ||
		filepath.Base(deb) != "fuseguard_"+version+"_amd64.deb" {
		t.Fatalf("control fields of %s:\n%s", filepath.Base(deb), fields.stdout)
	}

	// The members: exactly the files wanted, with their modes, nothing
	// under /usr/local, nothing under /etc but the configuration, every
	// directory 0755.
	entries := debContents(t, dpkgDeb, deb)
	for p, e := range entries {
		if strings.HasPrefix(p, "/usr/local/") || (strings.HasPrefix(p, "/etc/") && p != debConfig && p != path.Dir(debConfig)) {
			t.Errorf("package installs %s", p)
		}
		if strings.HasPrefix(e.mode, "d") {
			if e.mode != "drwxr-xr-x" {
				t.Errorf("directory %s has mode %s", p, e.mode)
			}
			continue
		}
		w, ok := want[p]
		switch {
		case !ok:
			t.Errorf("unexpected member %s (%s)", p, e.mode)
		case e.mode != w.mode || e.link != w.link:
			t.Errorf("%s: %s -> %q, want %s -> %q", p, e.mode, e.link, w.mode, w.link)
		}
	}
	for p := range want {
		if _, ok := entries[p]; !ok {
			t.Errorf("package lacks %s", p)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	checkDebPayload(t, dpkgDeb, deb)
	checkMaintainerScripts(t, dpkgDeb, deb)

	// Refuse to clobber: neither the package nor any of its files may be
	// here already, nor the state directory its purge removes.
	if r := run(t, 30*time.Second, nil, nil, dpkgQuery, "-W", "fuseguard"); r.code == 0 {
		refuse(t, "dpkg knows a fuseguard package already ("+strings.TrimSpace(r.stdout)+"); dpkg -P it first")
	}
	for _, p := range append(mapKeys(want), debStateDir) {
		switch _, err := os.Lstat(p); {
		case err == nil:
			refuse(t, p+" exists already (the package would overwrite or remove it)")
		case !errors.Is(err, fs.ErrNotExist):
			refuse(t, "cannot tell whether "+p+" exists: "+err.Error())
		}
	}
	dirsBefore := map[string]bool{}
	for p, e := range entries {
		if strings.HasPrefix(e.mode, "d") {
			_, err := os.Lstat(p)
			dirsBefore[p] = err == nil
		}
	}
	runtimesBefore := runtimeDaemons(t)

	// A private dockerd running across install and removal, with the
	// package's runtime registered (used once it is installed).
	stateDir := testenv.StateDir(t)
	d := dockerd.Start(t, dockerd.Options{
		Runtimes: map[string]string{"fuseguard": "/usr/bin/fuseguard-runtime"},
		ExtraEnv: []string{"FUSEGUARD_STATE_DIR=" + stateDir},
	})
	image := d.ImportImage(t, "fgtest/deb:latest", nil)
	dockerdStart := procStartTime(t, d.Pid)

	// Registered before installing, so a failure anywhere below still
	// leaves nothing of the package behind.
	t.Cleanup(func() {
		r := run(t, 2*time.Minute, nil, nil, dpkg, "-P", "fuseguard")
		if r.code != 0 {
			t.Errorf("cleanup: dpkg -P fuseguard: exit %d: %s", r.code, r.stderr)
		}
	})
	inst := run(t, 2*time.Minute, nil, nil, dpkg, "-i", deb)
	if inst.code != 0 {
		t.Fatalf("dpkg -i: exit %d\n%s%s", inst.code, inst.stdout, inst.stderr)
	}
	if !strings.Contains(inst.stdout, "nothing was restarted") {
		t.Errorf("postinst did not tell the operator what to restart:\n%s", inst.stdout)
	}
	for p, w := range want {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatalf("after dpkg -i: %v", err)
		}
		if fi.Mode().String() != w.mode && !(w.link != "" && fi.Mode()&fs.ModeSymlink != 0) {
			t.Errorf("installed %s has mode %s, want %s", p, fi.Mode(), w.mode)
		}
	}

	// The installed binary: its version is the package's.
	v := run(t, 30*time.Second, nil, nil, debBinary, "version")
	binVersion, ok := strings.CutPrefix(strings.TrimSpace(v.stdout), "fuseguard ")
	if v.code != 0 || !ok {
		t.Fatalf("fuseguard version: exit %d %q %s", v.code, v.stdout, v.stderr)
	}
	dv := run(t, 10*time.Second, nil, nil, filepath.Join(deployDir(t), "..", "scripts", "deb-version.sh"), binVersion)
	if got := strings.TrimSpace(dv.stdout); got != version {
		t.Errorf("installed fuseguard reports %q, which makes Debian version %q; the package is %q", binVersion, got, version)
	}
	// doctor finds the hooks.d files the package installed.
	doc := run(t, 30*time.Second, nil, nil, debBinary, "doctor", "--json", "--state-dir", stateDir)
	var report doctor.Report
	if err := json.Unmarshal([]byte(doc.stdout), &report); err != nil || (doc.code == 0) != report.OK {
		t.Errorf("fuseguard doctor --json: exit %d, report ok %v, %v\n%s%s", doc.code, report.OK, err, doc.stdout, doc.stderr)
	}
	if i := slices.IndexFunc(report.Checks, func(c doctor.Check) bool { return c.Name == "OCI hooks.d" }); i < 0 || report.Checks[i].Status != doctor.OK {
		t.Errorf("fuseguard doctor does not find the package's hooks.d files: %+v", report.Checks)
	}
	hook := run(t, 30*time.Second, nil, nil, debBinary, "hook", "-h")
	if !strings.Contains(hook.stderr+hook.stdout, "usage: fuseguard hook") {
		t.Errorf("fuseguard hook -h: exit %d\n%s%s", hook.code, hook.stdout, hook.stderr)
	}

	// The installed runtime runs a container of the private dockerd; the
	// installed fuseguard's status sees the container its hook recorded.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := d.RunDetached(ctx, image, "fuseguard", nil, "sleep", "60")
	if err != nil {
		t.Fatalf("docker run --runtime /usr/bin/fuseguard-runtime: %v\n%s", err, d.LogTail(20))
	}
	st := run(t, 30*time.Second, nil, nil, debBinary, "status", "--state-dir", stateDir)
	if st.code != 0 || !strings.Contains(st.stdout, id) {
		t.Errorf("fuseguard status --state-dir %s: exit %d, does not list container %s:\n%s%s", stateDir, st.code, id, st.stdout, st.stderr)
	}
	if err := d.Rm(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	// The default state directory: nothing to show, nothing created.
	st = run(t, 30*time.Second, nil, nil, debBinary, "status")
	if st.code != 0 || !strings.Contains(st.stdout, "state dir "+debStateDir) {
		t.Errorf("fuseguard status: exit %d:\n%s%s", st.code, st.stdout, st.stderr)
	}

	// State the watcher would have left; removal must keep it, purge not.
	if err := os.MkdirAll(debStateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(debStateDir, "deb-test-marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	rm := run(t, 2*time.Minute, nil, nil, dpkg, "-r", "fuseguard")
	if rm.code != 0 {
		t.Fatalf("dpkg -r: exit %d\n%s%s", rm.code, rm.stdout, rm.stderr)
	}
	// Removal keeps the conffile (the operator's configuration); purge
	// removes it.
	assertGone(t, "after dpkg -r", slices.DeleteFunc(mapKeys(want), func(p string) bool { return p == debConfig }))
	if _, err := os.Stat(debConfig); err != nil {
		t.Errorf("dpkg -r removed the configuration: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("dpkg -r removed the state directory: %v", err)
	}
	if q := run(t, 30*time.Second, nil, nil, dpkgQuery, "-W", "-f", "${Status}", "fuseguard"); q.stdout != "deinstall ok config-files" {
		t.Errorf("after dpkg -r: status %q (exit %d)", q.stdout, q.code)
	}

	purge := run(t, 2*time.Minute, nil, nil, dpkg, "-P", "fuseguard")
	if purge.code != 0 {
		t.Fatalf("dpkg -P: exit %d\n%s%s", purge.code, purge.stdout, purge.stderr)
	}
	if q := run(t, 30*time.Second, nil, nil, dpkgQuery, "-W", "fuseguard"); q.code == 0 {
		t.Errorf("after dpkg -P, dpkg still knows fuseguard: %s", q.stdout)
	}
	assertGone(t, "after dpkg -P", append(mapKeys(want), debStateDir))
	for dir, existed := range dirsBefore {
		if _, err := os.Lstat(dir); existed != (err == nil) {
			t.Errorf("after dpkg -P: directory %s existed before: %t, exists now: %t", dir, existed, err == nil)
		}
	}

	// Nothing restarted a container runtime: the private dockerd is the
	// same process, and so is every dockerd and containerd of the machine.
	if got := procStartTime(t, d.Pid); got != dockerdStart {
		t.Errorf("private dockerd %d restarted across install and removal", d.Pid)
	}
	for pid, start := range runtimesBefore {
		if got, err := procStart(proc.NewFS(""), pid); err != nil || got != start {
			t.Errorf("%s (pid %d) was stopped or restarted across install and removal", start, pid)
		}
	}
}

// refuse stops a test that would clobber the machine: a skip with the
// reason, a failure under CI (where the machine must be clean).
func refuse(t *testing.T, reason string) {
	t.Helper()
	testenv.Require(t, false, "a machine without fuseguard installed (refusing to install the package): "+reason)
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func assertGone(t *testing.T, when string, paths []string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %s is still there (%v)", when, p, err)
		}
	}
}

// controlField returns name's value from `dpkg-deb -f` output.
func controlField(out, name string) string {
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// debContents lists the data archive: absolute path → mode and link.
func debContents(t *testing.T, dpkgDeb, deb string) map[string]debEntry {
	t.Helper()
	r := run(t, time.Minute, nil, nil, dpkgDeb, "-c", deb)
	if r.code != 0 {
		t.Fatalf("dpkg-deb -c: exit %d: %s", r.code, r.stderr)
	}
	// drwxr-xr-x root/root 0 2026-12-03 13:56 ./usr/bin/
	// lrwxr-xr-x root/root 0 2026-12-03 13:56 ./usr/bin/fuseguard-runtime -> fuseguard
	entries := map[string]debEntry{}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", sc.Text())
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s", f[5], f[1])
		}
		e := debEntry{mode: f[0]}
		if len(f) == 8 && f[6] == "->" {
			e.link = f[7]
		}
		p := path.Clean("/" + strings.TrimPrefix(f[5], "."))
		if p == "/" {
			continue
		}
		entries[p] = e
	}
	return entries
}

// checkDebPayload extracts the package and checks what its files say: the
// hooks are oci.HooksD's for /usr/bin/fuseguard, the unit and the examples
// name /usr/bin, and nothing names /usr/local.
func checkDebPayload(t *testing.T, dpkgDeb, deb string) {
	t.Helper()
	root := t.TempDir()
	if r := run(t, time.Minute, nil, nil, dpkgDeb, "-x", deb, root); r.code != 0 {
		t.Fatalf("dpkg-deb -x: exit %d: %s", r.code, r.stderr)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, stage := range oci.Stages() {
		wantHook, err := oci.HooksD(debBinary, stage, 0)
		if err != nil {
			t.Fatal(err)
		}
		p := "/usr/share/containers/oci/hooks.d/fuseguard-" + string(stage) + ".json"
		if got := read(p); !bytes.Equal(got, wantHook) {
			t.Errorf("%s:\n%s\nwant:\n%s", p, got, wantHook)
		}
	}
	unit := read("/usr/lib/systemd/system/fuseguard-watch.service")
	if !regexp.MustCompile(`(?m)^ExecStart=/usr/bin/fuseguard watch\b`).Match(unit) {
		t.Errorf("unit's ExecStart is not /usr/bin/fuseguard watch:\n%s", unit)
	}
	for _, name := range []string{"docker-daemon.json", "docker-daemon.default-runtime.json",
		"containerd-fuseguard.toml", "containerd-fuseguard-default.toml"} {
		if b := read("/usr/share/doc/fuseguard/examples/" + name); !bytes.Contains(b, []byte("/usr/bin/fuseguard-runtime")) {
			t.Errorf("example %s does not name /usr/bin/fuseguard-runtime:\n%s", name, b)
		}
	}
	for p := range wantDebFiles() {
		if p == debBinary || p == "/usr/bin/fuseguard-runtime" {
			continue
		}
		if bytes.Contains(read(p), []byte("/usr/local")) {
			t.Errorf("%s names /usr/local", p)
		}
	}
}

// checkMaintainerScripts reads the package's maintainer scripts: no
// command in them stops, restarts or signals Docker or containerd (the
// postinst may only tell the operator to).
func checkMaintainerScripts(t *testing.T, dpkgDeb, deb string) {
	t.Helper()
	dir := t.TempDir()
	if r := run(t, time.Minute, nil, nil, dpkgDeb, "-e", deb, dir); r.code != 0 {
		t.Fatalf("dpkg-deb -e: exit %d: %s", r.code, r.stderr)
	}
	restarts := regexp.MustCompile(`\b(systemctl|service|invoke-rc\.d|deb-systemd-invoke|kill|pkill|killall)\b.*\b(docker|dockerd|containerd)\b`)
	for _, name := range []string{"preinst", "postinst", "prerm", "postrm"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		inMessage := false
		for line := range strings.Lines(string(b)) {
			code := strings.TrimSpace(line)
			switch {
			case inMessage:
				inMessage = code != "MSG"
				continue
			case strings.Contains(code, "<<'MSG'"):
				inMessage = true
			case strings.HasPrefix(code, "#"):
				continue
			}
			if restarts.MatchString(code) {
				t.Errorf("%s acts on a container runtime: %s", name, code)
			}
		}
	}
}

// runtimeDaemons returns every dockerd and containerd of the machine: pid
// → "comm starttime" (a restarted one has a new pid or start time).
func runtimeDaemons(t *testing.T) map[int]string {
	t.Helper()
	fs := proc.NewFS("")
	pids, err := fs.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, pid := range pids {
		if s, err := procStart(fs, pid); err == nil && (strings.HasPrefix(s, "dockerd ") || strings.HasPrefix(s, "containerd ")) {
			out[pid] = s
		}
	}
	return out
}

// procStart returns "comm starttime" of pid, read with the bounded
// /proc/PID/stat read.
func procStart(fs proc.FS, pid int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := fs.Stat(ctx, pid)
	if err != nil {
		return "", err
	}
	return st.Comm + " " + strconv.FormatUint(st.StartTime, 10), nil
}

func procStartTime(t *testing.T, pid int) string {
	t.Helper()
	s, err := procStart(proc.NewFS(""), pid)
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	return s
}
