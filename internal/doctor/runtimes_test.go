package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes body to dir/name (parents made) and returns its path.
func writeFile(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// installed returns an executable named fuseguard-runtime (and fuseguard)
// in a temp dir: a registration that points at it is installed.
func installed(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "fuseguard", "#!/bin/sh\n", 0o755)
	writeFile(t, dir, "fuseguard-runtime", "#!/bin/sh\n", 0o755)
	return dir
}

func TestCheckDocker(t *testing.T) {
	bin := installed(t)
	// The lean fuseguard-runtime alone: it cannot start the watcher.
	lone := t.TempDir()
	writeFile(t, lone, "fuseguard-runtime", "#!/bin/sh\n", 0o755)
	for _, tc := range []struct {
		name       string
		body       string // "" means no file
		status     Status
		registered bool
		detail     []string // substrings of Detail
	}{
		{name: "absent", status: Warn, detail: []string{"no "}},
		{name: "no runtimes", body: `{"log-level":"info"}`, status: Warn, detail: []string{"no runtime running fuseguard-runtime"}},
		{name: "other runtime", body: `{"runtimes":{"crun":{"path":"/usr/bin/crun"}}}`, status: Warn, detail: []string{"no runtime running"}},
		{name: "registered", body: `{"runtimes":{"fuseguard":{"path":"` + bin + `/fuseguard-runtime"}}}`, status: OK, registered: true,
			detail: []string{"runtime fuseguard runs " + bin + "/fuseguard-runtime", "not the default runtime"}},
		{name: "default", body: `{"default-runtime":"fg","runtimes":{"fg":{"path":"` + bin + `/fuseguard-runtime","runtimeArgs":["--fuseguard-state-dir","/run/x"]}}}`,
			status: OK, registered: true, detail: []string{"runtime fg runs", "(default)"}},
		{name: "not installed", body: `{"runtimes":{"fuseguard":{"path":"/nonexistent/fuseguard-runtime"}}}`, status: Warn, registered: true,
			detail: []string{"not installed: /nonexistent/fuseguard-runtime"}},
		{name: "no fuseguard beside", body: `{"runtimes":{"fuseguard":{"path":"` + lone + `/fuseguard-runtime"}}}`, status: Warn, registered: true,
			detail: []string{"not installed: " + lone + "/fuseguard"}},
		{name: "invalid JSON", body: `{"runtimes":{"fuseguard":`, status: Fail, detail: []string{"unexpected end of JSON input"}},
		{name: "hostile name", body: `{"runtimes":{"fg\u001b[2J":{"path":"` + bin + `/fuseguard-runtime"}}}`, status: OK, registered: true,
			detail: []string{`"fg\x1b[2J"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "daemon.json")
			if tc.body != "" {
				writeFile(t, filepath.Dir(path), "daemon.json", tc.body, 0o644)
			}
			c, registered := CheckDocker(path)
			assertCheck(t, c, tc.status, tc.detail)
			if registered != tc.registered {
				t.Errorf("registered = %v, want %v", registered, tc.registered)
			}
		})
	}
}

func TestCheckContainerd(t *testing.T) {
	bin := installed(t)
	handler := `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.fuseguard]
  runtime_type = 'io.containerd.runc.v2'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.fuseguard.options]
    BinaryName = '` + bin + `/fuseguard-runtime'
`
	plain := `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = "/usr/bin/runc"
`
	for _, tc := range []struct {
		name       string
		files      map[string]string // relative to the config's dir; "config.toml" is the config
		status     Status
		registered bool
		detail     []string
	}{
		{name: "absent", status: Warn, detail: []string{"no "}},
		{name: "without fuseguard", files: map[string]string{"config.toml": plain}, status: Warn, detail: []string{"set no BinaryName running fuseguard-runtime"}},
		{name: "in config", files: map[string]string{"config.toml": handler}, status: OK, registered: true, detail: []string{"runtime fuseguard in ", "runs " + bin + "/fuseguard-runtime"}},
		{name: "imported relative glob", files: map[string]string{
			"config.toml":           "version = 3\nimports = ['conf.d/*.toml']\n",
			"conf.d/fuseguard.toml": handler,
		}, status: OK, registered: true, detail: []string{"conf.d/fuseguard.toml"}},
		{name: "not imported", files: map[string]string{
			"config.toml":           plain,
			"conf.d/fuseguard.toml": handler,
		}, status: Warn, detail: []string{"set no BinaryName"}},
		{name: "no config, default conf.d", files: map[string]string{"conf.d/fuseguard.toml": handler}, status: OK, registered: true, detail: []string{"runtime fuseguard in"}},
		{name: "not installed", files: map[string]string{"config.toml": strings.ReplaceAll(handler, bin, "/nonexistent")}, status: Warn, registered: true,
			detail: []string{"not installed: /nonexistent/fuseguard-runtime"}},
		{name: "invalid TOML", files: map[string]string{"config.toml": "version = 3\n[plugins\n"}, status: Fail, detail: []string{"config.toml"}},
		{name: "invalid import", files: map[string]string{
			"config.toml": "imports = ['/dev/null', 'bad.toml']\n",
			"bad.toml":    "x = = 1\n",
		}, status: Fail, detail: []string{"bad.toml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				writeFile(t, dir, name, body, 0o644)
			}
			c, registered := CheckContainerd(filepath.Join(dir, "config.toml"))
			assertCheck(t, c, tc.status, tc.detail)
			if registered != tc.registered {
				t.Errorf("registered = %v, want %v", registered, tc.registered)
			}
		})
	}
}

func TestCheckHooks(t *testing.T) {
	bin := installed(t)
	hook := func(path, stage string) string {
		return `{"version":"1.0.0","hook":{"path":"` + path + `","args":["fuseguard","hook","` + stage + `"]},"when":{"always":true},"stages":["` + stage + `"]}`
	}
	all := map[string]string{}
	for _, s := range hookStages {
		all["fuseguard-"+s+".json"] = hook(bin+"/fuseguard", s)
	}
	for _, tc := range []struct {
		name       string
		files      map[string]string // nil: the dir does not exist
		status     Status
		registered bool
		detail     []string
	}{
		{name: "dir absent", status: Warn, detail: []string{"no fuseguard hook in"}},
		{name: "dir empty", files: map[string]string{}, status: Warn, detail: []string{"no fuseguard hook in"}},
		{name: "other hooks only", files: map[string]string{"nvidia.json": hook("/usr/bin/nvidia-ctk", "createRuntime"), "broken.json": "{"},
			status: Warn, detail: []string{"no fuseguard hook in"}},
		{name: "all stages", files: all, status: OK, registered: true, detail: []string{"fuseguard-poststop.json"}},
		{name: "poststop missing", files: map[string]string{"fuseguard-createRuntime.json": all["fuseguard-createRuntime.json"], "fuseguard-poststart.json": all["fuseguard-poststart.json"]},
			status: Warn, registered: true, detail: []string{"no hook at poststop"}},
		{name: "not installed", files: map[string]string{"fuseguard.json": `{"hook":{"path":"/nonexistent/fuseguard"},"stages":["createRuntime","poststart","poststop"]}`},
			status: Warn, registered: true, detail: []string{"not installed: /nonexistent/fuseguard"}},
		{name: "invalid fuseguard file", files: map[string]string{"fuseguard-poststop.json": `{"hook":`}, status: Fail, detail: []string{"fuseguard-poststop.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hooks.d")
			if tc.files != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for name, body := range tc.files {
				writeFile(t, dir, name, body, 0o644)
			}
			c, registered := CheckHooks([]string{filepath.Join(t.TempDir(), "absent"), dir})
			assertCheck(t, c, tc.status, tc.detail)
			if registered != tc.registered {
				t.Errorf("registered = %v, want %v", registered, tc.registered)
			}
		})
	}
}

func TestCheckRegistered(t *testing.T) {
	for _, tc := range []struct {
		docker, containerd, hooks bool
		want                      Status
	}{
		{false, false, false, Fail},
		{true, false, false, OK},
		{false, true, false, OK},
		{false, false, true, OK},
		{true, true, true, OK},
	} {
		c := checkRegistered(tc.docker, tc.containerd, tc.hooks)
		if c.Status != tc.want || (c.Status == Fail) != (c.Fix != "") {
			t.Errorf("checkRegistered(%v, %v, %v) = %+v, want status %s", tc.docker, tc.containerd, tc.hooks, c, tc.want)
		}
	}
}

// assertCheck checks the status, that Fix is set exactly when the status
// is not ok, and that Detail holds each of detail and no control byte.
func assertCheck(t *testing.T, c Check, status Status, detail []string) {
	t.Helper()
	if c.Status != status {
		t.Errorf("status = %s, want %s (%+v)", c.Status, status, c)
	}
	if (c.Status != OK) != (c.Fix != "") {
		t.Errorf("fix %q with status %s: want a fix exactly when not ok", c.Fix, c.Status)
	}
	for _, d := range detail {
		if !strings.Contains(c.Detail, d) {
			t.Errorf("detail %q does not mention %q", c.Detail, d)
		}
	}
	for _, r := range c.Detail + c.Fix {
		if r < 0x20 || r == 0x7f {
			t.Errorf("control character %q in %+v", r, c)
		}
	}
}
