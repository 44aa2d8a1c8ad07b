package e2e_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/test/fgcmd"
)

var update = flag.Bool("update", false, "rewrite deploy/hooks.d from oci.HooksD")

// installedBinary is the binary path the deploy files name (PREFIX=/usr/local).
const installedBinary = "/usr/local/bin/fuseguard"

func deployDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy")
}

// TestDeployHooksDInSync regenerates the hooks.d files with oci.HooksD and
// compares them with deploy/hooks.d (go test -run HooksD -update rewrites
// them).
func TestDeployHooksDInSync(t *testing.T) {
	dir := filepath.Join(deployDir(t), "hooks.d")
	for _, stage := range oci.Stages() {
		want, err := oci.HooksD(installedBinary, stage, 0)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "fuseguard-"+string(stage)+".json")
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date; run go test ./test/e2e -run HooksD -update\ngot:\n%s\nwant:\n%s", path, got, want)
		}
	}
}

// TestDeployDaemonJSON checks the daemon.json snippets: valid JSON whose
// fuseguard runtime is the installed symlink.
func TestDeployDaemonJSON(t *testing.T) {
	for _, name := range []string{"daemon.json", "daemon.default-runtime.json"} {
		var conf struct {
			DefaultRuntime string `json:"default-runtime"`
			Runtimes       map[string]struct {
				Path        string   `json:"path"`
				RuntimeArgs []string `json:"runtimeArgs"`
			} `json:"runtimes"`
		}
		b, err := os.ReadFile(filepath.Join(deployDir(t), "docker", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &conf); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p := conf.Runtimes["fuseguard"].Path; p != "/usr/local/bin/fuseguard-runtime" {
			t.Errorf("%s: fuseguard runtime path %q", name, p)
		}
		if name == "daemon.default-runtime.json" && conf.DefaultRuntime != "fuseguard" {
			t.Errorf("%s: default-runtime %q", name, conf.DefaultRuntime)
		}
	}
}

// TestInstallLayout runs deploy/install.sh (what `make install` runs) into
// a temporary DESTDIR with another PREFIX and checks what it laid out.
func TestInstallLayout(t *testing.T) {
	bin, rtbin := fgcmd.Binary(t), fgcmd.Runtime(t)
	dest := t.TempDir()
	const prefix = "/opt/fg"
	// An older install's fuseguard-runtime, a link to fuseguard: replaced,
	// not written through.
	if err := os.MkdirAll(filepath.Join(dest, prefix, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("fuseguard", filepath.Join(dest, prefix, "bin/fuseguard-runtime")); err != nil {
		t.Fatal(err)
	}
	r := run(t, 30*time.Second, []string{"DESTDIR=" + dest, "PREFIX=" + prefix}, nil,
		filepath.Join(deployDir(t), "install.sh"), bin, rtbin)
	if r.code != 0 {
		t.Fatalf("install.sh: exit %d: %s", r.code, r.stderr)
	}
	fi, err := os.Stat(filepath.Join(dest, prefix, "bin/fuseguard"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("bin/fuseguard: %v %v", fi, err)
	}
	for name, want := range map[string]string{"fuseguard": bin, "fuseguard-runtime": rtbin} {
		got := filepath.Join(dest, prefix, "bin", name)
		if fi, err := os.Lstat(got); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
			t.Fatalf("bin/%s: %v %v, want a regular file, mode 0755", name, fi, err)
		}
		if g, w := mustRead(got), mustRead(want); g != w {
			t.Fatalf("bin/%s is not a copy of %s", name, want)
		}
	}
	// The installed wrapper runs.
	rt := run(t, 10*time.Second, nil, nil, filepath.Join(dest, prefix, "bin/fuseguard-runtime"), "--fuseguard-runtime=/nonexistent/runc", "list")
	if rt.code != 1 || !bytes.Contains([]byte(rt.stderr), []byte("/nonexistent/runc")) {
		t.Fatalf("installed fuseguard-runtime: exit %d %q, want the wrapper's missing-runtime error", rt.code, rt.stderr)
	}
	for _, stage := range oci.Stages() {
		b, err := os.ReadFile(filepath.Join(dest, "etc/containers/oci/hooks.d/fuseguard-"+string(stage)+".json"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := oci.HooksD(prefix+"/bin/fuseguard", stage, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("installed hooks.d for %s:\n%s\nwant:\n%s", stage, b, want)
		}
	}
	for _, name := range []string{"docker-daemon.json", "docker-daemon.default-runtime.json"} {
		b, err := os.ReadFile(filepath.Join(dest, "etc/fuseguard", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"`+prefix+`/bin/fuseguard-runtime"`)) {
			t.Errorf("%s does not name %s/bin/fuseguard-runtime:\n%s", name, prefix, b)
		}
	}
	for _, name := range []string{"containerd-fuseguard.toml", "containerd-fuseguard-default.toml"} {
		b, err := os.ReadFile(filepath.Join(dest, "etc/fuseguard", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`BinaryName = '`+prefix+`/bin/fuseguard-runtime'`)) {
			t.Errorf("%s does not name %s/bin/fuseguard-runtime:\n%s", name, prefix, b)
		}
	}
	// The node configuration: the shipped defaults, kept when reinstalled.
	conf := filepath.Join(dest, "etc/fuseguard/config.toml")
	got, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustRead(filepath.Join(deployDir(t), "config.toml")); string(got) != want {
		t.Errorf("installed config.toml differs from deploy/config.toml")
	}
	if c := run(t, 10*time.Second, nil, nil, bin, "config", "--config", conf); c.code != 0 {
		t.Errorf("fuseguard config --config %s: exit %d %s", conf, c.code, c.stderr)
	}
	edited := append(got, []byte("# edited\n")...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, 30*time.Second, []string{"DESTDIR=" + dest, "PREFIX=" + prefix}, nil, filepath.Join(deployDir(t), "install.sh"), bin, rtbin); r.code != 0 {
		t.Fatalf("install.sh again: exit %d: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(conf); err != nil || !bytes.Equal(b, edited) {
		t.Errorf("install.sh replaced an existing config.toml (%v)", err)
	}
}
