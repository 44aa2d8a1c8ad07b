package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// HooksDVersion is the hooks.d schema podman and CRI-O read
// (containers/common pkg/hooks, "1.0.0").
const HooksDVersion = "1.0.0"

// hooksDFile is one hooks.d file of schema 1.0.0.
type hooksDFile struct {
	Version string     `json:"version"`
	Hook    specs.Hook `json:"hook"`
	When    hooksDWhen `json:"when"`
	Stages  []string   `json:"stages"`
}

// hooksDWhen is the file's condition; fuseguard's hooks always apply.
type hooksDWhen struct {
	Always *bool `json:"always,omitempty"`
}

// HooksD returns the hooks.d file (schema 1.0.0) that makes podman or
// CRI-O run `<binary> hook <stage>` for every container at stage, with
// timeout seconds (0: DefaultHookTimeout). One file per stage, as the hook's
// argv names its stage. The bytes are checked by decoding them back
// strictly; that binary exists is not checked (podman does, when loading).
func HooksD(binary string, stage Stage, timeout int) ([]byte, error) {
	set := HookSet{Path: binary, Timeout: timeout, Stages: []Stage{stage}}
	if err := set.Validate(); err != nil {
		return nil, err
	}
	always := true
	f := hooksDFile{
		Version: HooksDVersion,
		Hook:    set.Hook(stage),
		When:    hooksDWhen{Always: &always},
		Stages:  []string{string(stage)},
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	out = append(out, '\n')
	if err := checkHooksD(out, f); err != nil {
		return nil, fmt.Errorf("hooks.d round trip: %w", err)
	}
	return out, nil
}

// checkHooksD decodes data strictly and compares it with want.
func checkHooksD(data []byte, want hooksDFile) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var got hooksDFile
	if err := dec.Decode(&got); err != nil {
		return err
	}
	switch {
	case got.Version != want.Version:
		return fmt.Errorf("version %q", got.Version)
	case got.Hook.Path != want.Hook.Path || !slices.Equal(got.Hook.Args, want.Hook.Args) ||
		!slices.Equal(got.Hook.Env, want.Hook.Env) || got.Hook.Timeout == nil || *got.Hook.Timeout != *want.Hook.Timeout:
		return fmt.Errorf("hook %+v", got.Hook)
	case got.When.Always == nil || !*got.When.Always:
		return fmt.Errorf("when.always not set")
	case !slices.Equal(got.Stages, want.Stages):
		return fmt.Errorf("stages %q", got.Stages)
	}
	return nil
}
