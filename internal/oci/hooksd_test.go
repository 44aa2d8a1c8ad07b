package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestHooksD(t *testing.T) {
	for _, stage := range Stages() {
		for _, timeout := range []int{0, 1, 30} {
			data, err := HooksD(testBinary, stage, timeout)
			if err != nil {
				t.Fatalf("HooksD(%s, %d): %v", stage, timeout, err)
			}
			// Decode generically: the file must be exactly the schema's fields.
			var got map[string]any
			d := json.NewDecoder(bytes.NewReader(data))
			d.UseNumber()
			if err := d.Decode(&got); err != nil {
				t.Fatalf("%s: %v\n%s", stage, err, data)
			}
			wantTimeout := timeout
			if timeout == 0 {
				wantTimeout = DefaultHookTimeout
			}
			hook, _ := got["hook"].(map[string]any)
			args, _ := hook["args"].([]any)
			when, _ := got["when"].(map[string]any)
			stages, _ := got["stages"].([]any)
			switch {
			case len(got) != 4:
				t.Errorf("%s: top-level keys %v, want version, hook, when, stages", stage, got)
			case got["version"] != "1.0.0":
				t.Errorf("%s: version %v", stage, got["version"])
			case hook["path"] != testBinary:
				t.Errorf("%s: hook.path %v", stage, hook["path"])
			case len(args) != 3 || args[0] != testBinary || args[1] != "hook" || args[2] != string(stage):
				t.Errorf("%s: hook.args %v", stage, args)
			case hook["timeout"] != json.Number(jsonInt(wantTimeout)):
				t.Errorf("%s: hook.timeout %v, want %d", stage, hook["timeout"], wantTimeout)
			case len(when) != 1 || when["always"] != true:
				t.Errorf("%s: when %v", stage, when)
			case len(stages) != 1 || stages[0] != string(stage):
				t.Errorf("%s: stages %v", stage, stages)
			}
		}
	}
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestHooksDErrors(t *testing.T) {
	tests := []struct {
		name    string
		binary  string
		stage   Stage
		timeout int
		wantErr error
	}{
		{"relative binary", "fuseguard", Poststop, 0, ErrInvalidHookSet},
		{"empty binary", "", Poststop, 0, ErrInvalidHookSet},
		{"unknown stage", testBinary, "prestart", 0, ErrUnknownStage},
		{"empty stage", testBinary, "", 0, ErrUnknownStage},
		{"negative timeout", testBinary, Poststart, -5, ErrInvalidHookSet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := HooksD(tt.binary, tt.stage, tt.timeout)
			if !errors.Is(err, tt.wantErr) || data != nil {
				t.Errorf("HooksD = %q, %v; want error %v", data, err, tt.wantErr)
			}
		})
	}
}

// TestCheckHooksD: the round trip rejects what podman would not load.
func TestCheckHooksD(t *testing.T) {
	good, err := HooksD(testBinary, Poststart, 3)
	if err != nil {
		t.Fatal(err)
	}
	var want hooksDFile
	if err := json.Unmarshal(good, &want); err != nil {
		t.Fatal(err)
	}
	if err := checkHooksD(good, want); err != nil {
		t.Fatalf("good file rejected: %v", err)
	}
	for name, bad := range map[string]string{
		"unknown field": `{"version":"1.0.0","hook":{"path":"` + testBinary + `","args":["` + testBinary + `","hook","poststart"],"timeout":3},"when":{"always":true},"stages":["poststart"],"x":1}`,
		"old version":   `{"version":"0.1.0","hook":{"path":"` + testBinary + `","args":["` + testBinary + `","hook","poststart"],"timeout":3},"when":{"always":true},"stages":["poststart"]}`,
		"no when":       `{"version":"1.0.0","hook":{"path":"` + testBinary + `","args":["` + testBinary + `","hook","poststart"],"timeout":3},"when":{},"stages":["poststart"]}`,
		"other stage":   `{"version":"1.0.0","hook":{"path":"` + testBinary + `","args":["` + testBinary + `","hook","poststart"],"timeout":3},"when":{"always":true},"stages":["poststop"]}`,
		"no timeout":    `{"version":"1.0.0","hook":{"path":"` + testBinary + `","args":["` + testBinary + `","hook","poststart"]},"when":{"always":true},"stages":["poststart"]}`,
		"not JSON":      `{"version"`,
	} {
		if err := checkHooksD([]byte(bad), want); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
