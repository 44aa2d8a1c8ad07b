package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fuseguard/fuseguard/record"
)

// MaxStateSize bounds the State read from a hook's stdin. A real State is a
// few hundred bytes plus annotations; anything near this is not a runtime.
const MaxStateSize = 1 << 20

var (
	// ErrStateTooLarge is returned when stdin holds more than MaxStateSize bytes.
	ErrStateTooLarge = errors.New("oci state larger than 1 MiB")
	// ErrInvalidState is returned for a State that is empty, not JSON, or
	// fails validation; the wrapped message says which field.
	ErrInvalidState = errors.New("invalid oci state")
)

// ReadState reads the runtime-spec State a runtime writes to a hook's stdin
// and validates it for stage (see ValidateState). It reads at most
// MaxStateSize+1 bytes and exactly one JSON object; unknown fields of a
// newer spec are ignored.
func ReadState(r io.Reader, stage Stage) (*specs.State, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("read oci state: %w", err)
	}
	if len(data) > MaxStateSize {
		return nil, ErrStateTooLarge
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrInvalidState)
	}
	if data = bytes.TrimSpace(data); data[0] != '{' {
		// json.Unmarshal would accept null and leave a zero State.
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidState)
	}
	var st specs.State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if err := ValidateState(&st, stage); err != nil {
		return nil, err
	}
	return &st, nil
}

// ValidateState checks what fuseguard relies on: an id usable as a record
// name (record.ValidateID), a known status, an absolute bundle path, and
// a pid > 0 at the stages whose State carries one (Stage.NeedsPID).
//
// Status is one of the spec's four or "paused", which runc reports for a
// frozen container.
func ValidateState(st *specs.State, stage Stage) error {
	if !stage.Valid() {
		return fmt.Errorf("%w: %q", ErrUnknownStage, stage)
	}
	if err := record.ValidateID(st.ID); err != nil {
		return fmt.Errorf("%w: id: %w", ErrInvalidState, err)
	}
	switch st.Status {
	case specs.StateCreating, specs.StateCreated, specs.StateRunning, specs.StateStopped, "paused":
	default:
		return fmt.Errorf("%w: status %q", ErrInvalidState, st.Status)
	}
	if st.Pid < 0 || (stage.NeedsPID() && st.Pid == 0) {
		return fmt.Errorf("%w: pid %d at %s", ErrInvalidState, st.Pid, stage)
	}
	if !filepath.IsAbs(st.Bundle) {
		return fmt.Errorf("%w: bundle %q is not an absolute path", ErrInvalidState, st.Bundle)
	}
	return nil
}
