package oci

import (
	"errors"
	"fmt"
)

// ErrUnknownStage is returned for a hook stage fuseguard does not run at.
var ErrUnknownStage = errors.New("unknown hook stage")

// Stage is a runtime-spec hook stage at which fuseguard runs. The values are
// the spec's own names, so they appear verbatim in config.json, in hooks.d
// files and on the hook's command line.
type Stage string

const (
	// CreateRuntime runs after the runtime created the container's
	// namespaces, before pivot_root: the earliest point with the init pid.
	CreateRuntime Stage = "createRuntime"
	// Poststart runs after the user process started.
	Poststart Stage = "poststart"
	// Poststop runs after the container was deleted. It never runs while
	// init is stuck, so it only cleans up.
	Poststop Stage = "poststop"
)

// Stages lists every stage fuseguard hooks, in lifecycle order.
func Stages() []Stage { return []Stage{CreateRuntime, Poststart, Poststop} }

// ParseStage returns the Stage named s (exact, case-sensitive, as in the spec).
func ParseStage(s string) (Stage, error) {
	st := Stage(s)
	if !st.Valid() {
		return "", fmt.Errorf("%w: %q (want one of %v)", ErrUnknownStage, s, Stages())
	}
	return st, nil
}

// Valid reports whether s is one of Stages.
func (s Stage) Valid() bool {
	switch s {
	case CreateRuntime, Poststart, Poststop:
		return true
	}
	return false
}

// NeedsPID reports whether the runtime's State carries the init pid at this
// stage. At poststop the process is gone and runc omits it.
func (s Stage) NeedsPID() bool { return s == CreateRuntime || s == Poststart }

func (s Stage) String() string { return string(s) }
