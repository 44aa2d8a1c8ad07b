package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrInvalidConfig is returned for a config.json that is not a JSON object
// or whose "hooks" is not shaped as the spec says.
var ErrInvalidConfig = errors.New("invalid bundle config.json")

// InjectHooks appends hooks' entries to the bundle config configJSON and
// returns the new document and whether anything changed.
//
// Only "hooks" is decoded: every other top-level field, every other stage
// inside "hooks" and every existing entry are kept as raw JSON, so the
// fields of a newer spec survive with their meaning (the bytes are
// re-encoded compactly, and top-level keys come out sorted). Existing hooks
// keep their order; ours are appended. A stage that already holds our hook
// (same path and argv) is left alone, and when no stage needed a hook the
// input is returned as is with changed=false, so injecting twice is a no-op.
func InjectHooks(configJSON []byte, hooks HookSet) ([]byte, bool, error) {
	if err := hooks.Validate(); err != nil {
		return nil, false, err
	}
	top, err := decodeObject(configJSON)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var stages map[string]json.RawMessage
	if raw, ok := top["hooks"]; ok && !isNull(raw) {
		if stages, err = decodeObject(raw); err != nil {
			return nil, false, fmt.Errorf("%w: hooks: %w", ErrInvalidConfig, err)
		}
	}
	if stages == nil {
		stages = map[string]json.RawMessage{}
	}

	changed := false
	for _, stage := range hooks.stages() {
		raw, err := appendHook(stages[string(stage)], stage, hooks)
		if err != nil {
			return nil, false, fmt.Errorf("%w: hooks.%s: %w", ErrInvalidConfig, stage, err)
		}
		if raw != nil {
			stages[string(stage)] = raw
			changed = true
		}
	}
	if !changed {
		return configJSON, false, nil
	}
	if top["hooks"], err = encode(stages); err != nil {
		return nil, false, err
	}
	out, err := encode(top)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// appendHook returns the stage's entries with our hook appended, or nil when
// it is already there.
func appendHook(raw json.RawMessage, stage Stage, hooks HookSet) (json.RawMessage, error) {
	var entries []json.RawMessage
	if raw != nil && !isNull(raw) {
		if err := json.Unmarshal(raw, &entries); err != nil {
			return nil, err
		}
	}
	for _, e := range entries {
		var h specs.Hook
		// An entry that is not a valid Hook is someone else's problem and
		// certainly not ours; keep it as is.
		if json.Unmarshal(e, &h) == nil && hooks.isOurs(h, stage) {
			return nil, nil
		}
	}
	ours, err := encode(hooks.Hook(stage))
	if err != nil {
		return nil, err
	}
	return encode(append(entries, ours))
}

// decodeObject decodes a JSON object into its raw members. Unlike a bare
// json.Unmarshal it rejects null, which would leave a nil map.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// encode marshals v compactly without HTML escaping, which would rewrite
// '<', '>' and '&' inside other tools' strings for no reason.
func encode(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
