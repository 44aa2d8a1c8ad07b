package oci

import (
	"errors"
	"testing"
)

func TestParseStage(t *testing.T) {
	tests := []struct {
		in   string
		want Stage
		ok   bool
	}{
		{"createRuntime", CreateRuntime, true},
		{"poststart", Poststart, true},
		{"poststop", Poststop, true},
		{"prestart", "", false},
		{"createContainer", "", false},
		{"CreateRuntime", "", false},
		{"POSTSTOP", "", false},
		{" poststop", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := ParseStage(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseStage(%q) = %q, %v", tt.in, got, err)
		}
		if !tt.ok && !errors.Is(err, ErrUnknownStage) {
			t.Errorf("ParseStage(%q) err = %v, want ErrUnknownStage", tt.in, err)
		}
	}
	for _, s := range Stages() {
		if got, err := ParseStage(s.String()); err != nil || got != s {
			t.Errorf("ParseStage(%s) = %q, %v", s, got, err)
		}
	}
	if !CreateRuntime.NeedsPID() || !Poststart.NeedsPID() || Poststop.NeedsPID() {
		t.Error("NeedsPID: want createRuntime and poststart only")
	}
}
