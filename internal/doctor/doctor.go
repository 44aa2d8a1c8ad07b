// Package doctor checks whether a node can be protected by fuseguard: the
// kernel features it relies on, its registration with a container runtime,
// the node watcher and the state directory. Each check reads the node and
// changes nothing.
package doctor

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/fuseguard/fuseguard/record"
)

// Status is a check's verdict.
type Status string

const (
	// OK: nothing to do.
	OK Status = "ok"
	// Warn: fuseguard works, but something an operator should know about
	// (a runtime left unprotected, no watcher yet).
	Warn Status = "warn"
	// Fail: fuseguard cannot protect this node until it is fixed.
	Fail Status = "fail"
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix says what to do; set for warn and fail.
	Fix string `json:"fix,omitempty"`
}

// Report is every check, in order.
type Report struct {
	// OK is true when no check failed (warnings allowed).
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Count returns how many checks have status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// Default locations of what the checks read.
const (
	DefaultDevFuse          = "/dev/fuse"
	DefaultFuseSysctlDir    = "/proc/sys/fs/fuse"
	DefaultDockerConfig     = "/etc/docker/daemon.json"
	DefaultContainerdConfig = "/etc/containerd/config.toml"
)

// DefaultHooksDirs are the hooks directories podman and CRI-O read.
func DefaultHooksDirs() []string {
	return []string{"/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d"}
}

// Options say where the checks look; the zero value of a field means its
// default.
type Options struct {
	StateDir         string // "" means $FUSEGUARD_STATE_DIR or the default, as every command
	DevFuse          string
	FusectlDir       string
	FuseSysctlDir    string
	DockerConfig     string
	ContainerdConfig string
	HooksDirs        []string
}

func (o Options) withDefaults() Options {
	o.StateDir = record.NewStore(o.StateDir).Dir
	if o.DevFuse == "" {
		o.DevFuse = DefaultDevFuse
	}
	if o.FuseSysctlDir == "" {
		o.FuseSysctlDir = DefaultFuseSysctlDir
	}
	if o.DockerConfig == "" {
		o.DockerConfig = DefaultDockerConfig
	}
	if o.ContainerdConfig == "" {
		o.ContainerdConfig = DefaultContainerdConfig
	}
	if len(o.HooksDirs) == 0 {
		o.HooksDirs = DefaultHooksDirs()
	}
	return o
}

// Run runs every check. ctx bounds the reads of /proc that could block.
func Run(ctx context.Context, o Options) Report {
	o = o.withDefaults()
	docker, dockerFound := CheckDocker(o.DockerConfig)
	containerd, containerdFound := CheckContainerd(o.ContainerdConfig)
	hooks, hooksFound := CheckHooks(o.HooksDirs)
	checks := []Check{
		CheckRoot(),
		CheckDevFuse(o.DevFuse),
		CheckFusectl(o.FusectlDir),
		CheckProcReadable(ctx),
		CheckPidfd(),
		docker,
		containerd,
		hooks,
		checkRegistered(dockerFound, containerdFound, hooksFound),
		CheckWatcher(o.StateDir),
		CheckExitEvents(),
		CheckStateDir(o.StateDir),
		CheckKernelTimeouts(o.FuseSysctlDir),
	}
	r := Report{OK: true, Checks: checks}
	for _, c := range checks {
		if c.Status == Fail {
			r.OK = false
		}
	}
	return r
}

// namesFuseguard reports whether an executable path from a runtime's
// configuration is fuseguard's: its file name starts with "fuseguard"
// (the binary, its fuseguard-runtime link, or a wrapper script).
func namesFuseguard(path string) bool {
	return strings.HasPrefix(filepath.Base(path), "fuseguard")
}
