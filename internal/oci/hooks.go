package oci

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultHookTimeout is the hook timeout, in seconds, when none is set.
// The hook only reads /proc and writes a small file; the runtime kills it
// after this and (fail open aside) fails the container's start.
const DefaultHookTimeout = 10

// ErrInvalidHookSet is returned for a HookSet that would produce a hook the
// runtime rejects.
var ErrInvalidHookSet = errors.New("invalid hook set")

// HookSet says which fuseguard hooks to add: for each stage, a hook running
// `<Path> hook <stage>`.
type HookSet struct {
	// Path is the absolute path of the fuseguard binary (the spec requires
	// an absolute hook path).
	Path string
	// Timeout in seconds; 0 means DefaultHookTimeout.
	Timeout int
	// Env is the hook's whole environment: runc runs hooks with exactly
	// this and nothing inherited, so e.g. FUSEGUARD_STATE_DIR goes here.
	Env []string
	// Stages to hook; nil means Stages().
	Stages []Stage
}

// Hook returns the entry for stage: argv is [Path, "hook", stage].
func (h HookSet) Hook(stage Stage) specs.Hook {
	timeout := h.Timeout
	if timeout == 0 {
		timeout = DefaultHookTimeout
	}
	return specs.Hook{
		Path:    h.Path,
		Args:    []string{h.Path, "hook", string(stage)},
		Env:     slices.Clone(h.Env),
		Timeout: &timeout,
	}
}

func (h HookSet) stages() []Stage {
	if h.Stages == nil {
		return Stages()
	}
	return h.Stages
}

// Validate checks the set before anything is written.
func (h HookSet) Validate() error {
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("%w: binary path %q is not absolute", ErrInvalidHookSet, h.Path)
	}
	if h.Timeout < 0 {
		return fmt.Errorf("%w: timeout %d < 0", ErrInvalidHookSet, h.Timeout)
	}
	seen := map[Stage]bool{}
	for _, s := range h.stages() {
		if !s.Valid() {
			return fmt.Errorf("%w: %w: %q", ErrInvalidHookSet, ErrUnknownStage, s)
		}
		if seen[s] {
			return fmt.Errorf("%w: stage %s twice", ErrInvalidHookSet, s)
		}
		seen[s] = true
	}
	return nil
}

// isOurs reports whether an existing entry is the hook HookSet adds at
// stage: same path and argv. Timeout and env are not compared, so a set
// with a new timeout does not add a second, duplicate run of the hook.
func (h HookSet) isOurs(e specs.Hook, stage Stage) bool {
	want := h.Hook(stage)
	return e.Path == want.Path && slices.Equal(e.Args, want.Args)
}
