package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/fuseguard/fuseguard/internal/untrusted"
)

// What the runtime checks name, and what reports them.
const (
	nameDocker     = "docker runtime"
	nameContainerd = "containerd runtime"
	nameHooks      = "OCI hooks.d"
	nameRegistered = "runtime registered"
)

// ---- Docker ----

// DockerRuntime is a runtime of daemon.json that runs fuseguard.
type DockerRuntime struct {
	Name    string
	Path    string
	Default bool // daemon.json's default-runtime
}

// DockerRuntimes returns the runtimes of the daemon.json at path whose
// path names fuseguard. A missing file is an error wrapping
// fs.ErrNotExist; a file that is not JSON is the parse error.
func DockerRuntimes(path string) ([]DockerRuntime, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		DefaultRuntime string `json:"default-runtime"`
		Runtimes       map[string]struct {
			Path string `json:"path"`
		} `json:"runtimes"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []DockerRuntime
	for name, rt := range cfg.Runtimes {
		if namesFuseguard(rt.Path) {
			out = append(out, DockerRuntime{Name: name, Path: rt.Path, Default: name == cfg.DefaultRuntime})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CheckDocker reports fuseguard's registration in Docker's daemon.json,
// and whether it found one.
func CheckDocker(path string) (Check, bool) {
	c := Check{Name: nameDocker}
	file := untrusted.Text(path)
	fix := "merge deploy/docker/daemon.json (installed as /etc/fuseguard/docker-daemon.json) into " + file + " and restart dockerd"
	rts, err := DockerRuntimes(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.Status, c.Detail, c.Fix = Warn, "no "+file+": Docker's containers are not protected", fix
		return c, false
	case err != nil:
		c.Status, c.Detail = Fail, untrusted.Line(err.Error())
		c.Fix = "fix " + file + ": dockerd does not start with it either"
		return c, false
	case len(rts) == 0:
		c.Status, c.Detail, c.Fix = Warn, file+" has no runtime running fuseguard-runtime: Docker's containers are not protected", fix
		return c, false
	}
	var parts []string
	def := false
	for _, rt := range rts {
		s := fmt.Sprintf("runtime %s runs %s", untrusted.Text(rt.Name), untrusted.Text(rt.Path))
		if rt.Default {
			s += " (default)"
			def = true
		}
		parts = append(parts, s)
	}
	c.Status, c.Detail = OK, strings.Join(parts, ", ")
	if !def {
		c.Detail += "; not the default runtime: only containers run with --runtime " + untrusted.Text(rts[0].Name) + " are protected"
	}
	if missing := missingExecutables(rtPaths(rts)); len(missing) > 0 {
		c.Status = Warn
		c.Detail += "; not installed: " + strings.Join(missing, ", ")
		c.Fix = "install fuseguard there (make install), or correct the path in " + file
	}
	return c, true
}

func rtPaths(rts []DockerRuntime) []string {
	out := make([]string, len(rts))
	for i, rt := range rts {
		out[i] = rt.Path
	}
	return out
}

// missingExecutables returns, escaped, each path that is not an
// executable file, and each fuseguard missing beside one: the lean
// fuseguard-runtime and its hooks run it to start the node watcher and to
// export spans.
func missingExecutables(paths []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		for _, q := range []string{p, filepath.Join(filepath.Dir(p), "fuseguard")} {
			if seen[q] {
				continue
			}
			seen[q] = true
			if st, err := os.Stat(q); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
				out = append(out, untrusted.Text(q))
			}
		}
	}
	return out
}

// ---- containerd ----

// maxContainerdFiles bounds the files read through imports.
const maxContainerdFiles = 64

// ContainerdRuntime is a table of a containerd config whose BinaryName
// runs fuseguard.
type ContainerdRuntime struct {
	File       string
	Table      string // dotted path of the table holding BinaryName
	BinaryName string
}

// ContainerdRuntimes returns the tables of containerd's config at path,
// and of the files it imports, whose BinaryName names fuseguard, and the
// files it read. When path does not exist, containerd 2 runs its default
// config, which imports conf.d/*.toml beside it: those are read instead. A
// file that is not TOML is the parse error.
func ContainerdRuntimes(path string) ([]ContainerdRuntime, []string, error) {
	var queue []string
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		q, err := filepath.Glob(filepath.Join(filepath.Dir(path), "conf.d", "*.toml"))
		if err != nil {
			return nil, nil, err
		}
		if len(q) == 0 {
			return nil, nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
		}
		queue = q
	} else {
		queue = []string{path}
	}
	var out []ContainerdRuntime
	var read []string
	seen := map[string]bool{}
	for len(queue) > 0 && len(read) < maxContainerdFiles {
		file := queue[0]
		queue = queue[1:]
		if seen[file] {
			continue
		}
		seen[file] = true
		b, err := os.ReadFile(file)
		if err != nil {
			return out, read, err
		}
		read = append(read, file)
		var cfg map[string]any
		if err := toml.Unmarshal(b, &cfg); err != nil {
			return out, read, fmt.Errorf("%s: %w", file, err)
		}
		walkBinaryNames(cfg, nil, func(table []string, bin string) {
			if namesFuseguard(bin) {
				out = append(out, ContainerdRuntime{File: file, Table: strings.Join(table, "."), BinaryName: bin})
			}
		})
		imports, err := containerdImports(cfg, filepath.Dir(file))
		if err != nil {
			return out, read, fmt.Errorf("%s: %w", file, err)
		}
		queue = append(queue, imports...)
	}
	return out, read, nil
}

// containerdImports expands a config's `imports`: paths relative to the
// config's directory, globs allowed, as containerd resolves them.
func containerdImports(cfg map[string]any, dir string) ([]string, error) {
	raw, ok := cfg["imports"]
	if !ok {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("imports is %T, want a list of paths", raw)
	}
	var out []string
	for _, v := range list {
		p, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("imports holds %T, want a path", v)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("imports %q: %w", p, err)
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	return out, nil
}

// walkBinaryNames calls fn for every string BinaryName in the tree.
func walkBinaryNames(t map[string]any, table []string, fn func(table []string, bin string)) {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := t[k].(type) {
		case map[string]any:
			walkBinaryNames(v, append(table[:len(table):len(table)], k), fn)
		case string:
			if k == "BinaryName" {
				fn(table, v)
			}
		}
	}
}

// CheckContainerd reports fuseguard's registration in containerd's config,
// and whether it found one.
func CheckContainerd(path string) (Check, bool) {
	c := Check{Name: nameContainerd}
	file := untrusted.Text(path)
	fix := "drop deploy/containerd/fuseguard.toml (or fuseguard-default.toml) in " + untrusted.Text(filepath.Join(filepath.Dir(path), "conf.d")) + ", import it from " + file + ", and restart containerd"
	rts, _, err := ContainerdRuntimes(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && len(rts) == 0:
		c.Status, c.Detail, c.Fix = Warn, "no "+file+": CRI pods are not protected", fix
		return c, false
	case err != nil:
		c.Status, c.Detail = Fail, untrusted.Line(err.Error())
		c.Fix = "fix the file: containerd does not start with it either"
		return c, false
	case len(rts) == 0:
		c.Status, c.Detail, c.Fix = Warn, file+" and its imports set no BinaryName running fuseguard-runtime: CRI pods are not protected", fix
		return c, false
	}
	var parts, bins []string
	for _, rt := range rts {
		parts = append(parts, fmt.Sprintf("%s in %s runs %s", untrusted.Text(runtimeHandler(rt.Table)), untrusted.Text(rt.File), untrusted.Text(rt.BinaryName)))
		bins = append(bins, rt.BinaryName)
	}
	c.Status, c.Detail = OK, "runtime "+strings.Join(parts, ", ")
	if missing := missingExecutables(bins); len(missing) > 0 {
		c.Status = Warn
		c.Detail += "; not installed: " + strings.Join(missing, ", ")
		c.Fix = "install fuseguard there (make install), or correct BinaryName"
	}
	return c, true
}

// runtimeHandler names the CRI runtime handler of a BinaryName table
// (…runtimes.NAME.options), or the table itself.
func runtimeHandler(table string) string {
	const marker = ".runtimes."
	if i := strings.LastIndex(table, marker); i >= 0 {
		name, _, _ := strings.Cut(table[i+len(marker):], ".")
		return name
	}
	return table
}

// ---- OCI hooks.d (podman, CRI-O) ----

// hookStages are the stages fuseguard's hook must run at: record at
// createRuntime and poststart, forget at poststop.
var hookStages = []string{"createRuntime", "poststart", "poststop"}

// Hook is a hooks.d file that runs fuseguard.
type Hook struct {
	File   string
	Path   string
	Stages []string
}

// HooksIn returns the hooks of the *.json files in dir whose hook path
// names fuseguard. A missing dir is no hooks. A file that is not JSON is
// an error when its name mentions fuseguard, else skipped: other tools'
// hooks are not fuseguard's to judge.
func HooksIn(dir string) ([]Hook, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Hook
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return out, err
		}
		var h struct {
			Hook struct {
				Path string `json:"path"`
			} `json:"hook"`
			Stages []string `json:"stages"`
		}
		if err := json.Unmarshal(b, &h); err != nil {
			if strings.Contains(filepath.Base(f), "fuseguard") {
				return out, fmt.Errorf("%s: %w", f, err)
			}
			continue
		}
		if namesFuseguard(h.Hook.Path) {
			out = append(out, Hook{File: f, Path: h.Hook.Path, Stages: h.Stages})
		}
	}
	return out, nil
}

// CheckHooks reports fuseguard's hooks in the hooks.d dirs, and whether
// it found any.
func CheckHooks(dirs []string) (Check, bool) {
	c := Check{Name: nameHooks}
	var hooks []Hook
	for _, d := range dirs {
		h, err := HooksIn(d)
		if err != nil {
			c.Status, c.Detail = Fail, untrusted.Line(err.Error())
			c.Fix = "fix or remove the file; reinstall the hooks with deploy/install.sh"
			return c, false
		}
		hooks = append(hooks, h...)
	}
	escDirs := make([]string, len(dirs))
	for i, d := range dirs {
		escDirs[i] = untrusted.Text(d)
	}
	if len(hooks) == 0 {
		c.Status = Warn
		c.Detail = "no fuseguard hook in " + strings.Join(escDirs, " or ") + ": podman and CRI-O containers are not protected"
		c.Fix = "install deploy/hooks.d/*.json into /etc/containers/oci/hooks.d (deploy/install.sh does)"
		return c, false
	}
	have := map[string]bool{}
	var files, paths []string
	for _, h := range hooks {
		files = append(files, untrusted.Text(h.File))
		paths = append(paths, h.Path)
		for _, s := range h.Stages {
			have[s] = true
		}
	}
	var missing []string
	for _, s := range hookStages {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	c.Status, c.Detail = OK, strings.Join(files, ", ")
	if len(missing) > 0 {
		c.Status = Warn
		c.Detail += "; no hook at " + strings.Join(missing, ", ")
		c.Fix = "install all of deploy/hooks.d/*.json (deploy/install.sh does)"
	}
	if bad := missingExecutables(paths); len(bad) > 0 {
		c.Status = Warn
		c.Detail += "; not installed: " + strings.Join(bad, ", ")
		c.Fix = "install fuseguard there (make install), or correct the hook path"
	}
	return c, true
}

// checkRegistered fails when no runtime runs fuseguard: then no container
// on the node is protected.
func checkRegistered(docker, containerd, hooks bool) Check {
	c := Check{Name: nameRegistered}
	var with []string
	for _, r := range []struct {
		name string
		ok   bool
	}{{"docker", docker}, {"containerd", containerd}, {"hooks.d", hooks}} {
		if r.ok {
			with = append(with, r.name)
		}
	}
	if len(with) == 0 {
		c.Status, c.Detail = Fail, "fuseguard is registered with no container runtime: no container is protected"
		c.Fix = "register it with at least one: Docker's daemon.json, containerd's config, or hooks.d (see README)"
		return c
	}
	c.Status, c.Detail = OK, "with "+strings.Join(with, ", ")
	return c
}
