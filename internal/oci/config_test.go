package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fuseguard/fuseguard/test/testenv"
)

const testBinary = "/usr/local/bin/fuseguard"

// futureConfig is a config.json carrying what a newer spec or another tool
// might put there: unknown top-level fields, unknown fields in process and
// in hooks entries, an unknown hook stage, other tools' hooks in our
// stages, characters that HTML escaping would rewrite, and a number json
// would round to float64.
const futureConfig = `{
  "ociVersion": "1.9.0",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh", "-c", "echo <a&b>"],
    "cwd": "/",
    "fooProcessField": {"nested": [1, 2, {"deep": true}]}
  },
  "root": {"path": "rootfs"},
  "fooTopLevel": {"x": "y", "big": 123456789012345678901234567890},
  "fooList": [null, false, "s"],
  "hooks": {
    "prestart": [{"path": "/usr/bin/legacy", "fooEntryField": 7}],
    "createRuntime": [{"path": "/usr/bin/nvidia-hook", "args": ["nvidia-hook", "prestart"], "timeout": 3, "fooEntryField": "keep me"}],
    "fooHook": [{"path": "/usr/bin/future"}]
  },
  "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}], "fooLinux": 1}
}`

// generic decodes JSON into interface{} values to compare by meaning.
func generic(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // keep big numbers exact
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return m
}

// ourEntry is hooks.Hook(stage) in generic form.
func ourEntry(t testing.TB, hooks HookSet, stage Stage) any {
	t.Helper()
	b, err := json.Marshal(hooks.Hook(stage))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// checkInjected asserts that out is in with exactly our hooks appended to
// the stages of hooks, and everything else equal by meaning.
func checkInjected(t *testing.T, in, out []byte, hooks HookSet) {
	t.Helper()
	before, after := generic(t, in), generic(t, out)
	hb, _ := before["hooks"].(map[string]any)
	ha, ok := after["hooks"].(map[string]any)
	if !ok {
		t.Fatalf("no hooks object in output: %s", out)
	}
	delete(before, "hooks")
	delete(after, "hooks")
	if !reflect.DeepEqual(before, after) {
		t.Errorf("fields outside hooks changed:\nbefore %v\nafter  %v", before, after)
	}
	for stage, v := range hb {
		if !slices.Contains(hooks.stages(), Stage(stage)) && !reflect.DeepEqual(v, ha[stage]) {
			t.Errorf("hooks.%s changed: %v -> %v", stage, v, ha[stage])
		}
	}
	for _, stage := range hooks.stages() {
		old, _ := hb[string(stage)].([]any)
		got, _ := ha[string(stage)].([]any)
		want := append(slices.Clone(old), ourEntry(t, hooks, stage))
		if slices.ContainsFunc(old, func(e any) bool { return isOursGeneric(hooks, stage, e) }) {
			want = old
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("hooks.%s = %v, want %v", stage, got, want)
		}
	}
	for stage := range ha {
		if _, ok := hb[stage]; !ok && !slices.Contains(hooks.stages(), Stage(stage)) {
			t.Errorf("hooks.%s appeared from nowhere", stage)
		}
	}
}

// isOursGeneric is HookSet.isOurs on a generic entry, decoded the way the
// runtime decodes it.
func isOursGeneric(hooks HookSet, stage Stage, e any) bool {
	b, err := json.Marshal(e)
	if err != nil {
		return false
	}
	var h specs.Hook
	return json.Unmarshal(b, &h) == nil && hooks.isOurs(h, stage)
}

func TestInjectHooks(t *testing.T) {
	all := HookSet{Path: testBinary, Timeout: 7, Env: []string{"FUSEGUARD_STATE_DIR=/run/fg"}}
	tests := []struct {
		name  string
		in    string
		hooks HookSet
	}{
		{"future fields", futureConfig, all},
		{"no hooks", `{"ociVersion":"1.0.2","root":{"path":"rootfs"}}`, all},
		{"hooks null", `{"hooks":null}`, all},
		{"stage null", `{"hooks":{"poststart":null,"poststop":[]}}`, all},
		{"empty object", `{}`, HookSet{Path: testBinary}},
		{"one stage", futureConfig, HookSet{Path: testBinary, Stages: []Stage{Poststop}}},
		{"foreign entries that are not hooks", `{"hooks":{"poststop":[42,"x",{"path":7}]}}`, all},
		{"our hook at another stage only", `{"hooks":{"poststart":[{"path":"` + testBinary + `","args":["` + testBinary + `","hook","poststop"]}]}}`, HookSet{Path: testBinary, Stages: []Stage{Poststart}}},
		{"another binary's fuseguard", `{"hooks":{"poststop":[{"path":"/opt/fuseguard","args":["/opt/fuseguard","hook","poststop"]}]}}`, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			out, changed, err := InjectHooks(in, tt.hooks)
			if err != nil {
				t.Fatalf("InjectHooks: %v", err)
			}
			if !bytes.Equal(in, []byte(tt.in)) {
				t.Fatal("InjectHooks modified its input")
			}
			if !changed {
				t.Fatal("changed = false on a config without our hooks")
			}
			if !json.Valid(out) {
				t.Fatalf("output is not JSON: %s", out)
			}
			checkInjected(t, in, out, tt.hooks)

			again, changed, err := InjectHooks(out, tt.hooks)
			if err != nil || changed || !bytes.Equal(again, out) {
				t.Errorf("second injection: changed=%v err=%v, bytes equal=%v", changed, err, bytes.Equal(again, out))
			}
		})
	}
}

// TestInjectHooksKeepsBytes checks what a semantic comparison cannot see:
// no HTML escaping, big numbers kept digit for digit.
func TestInjectHooksKeepsBytes(t *testing.T) {
	out, _, err := InjectHooks([]byte(futureConfig), HookSet{Path: testBinary})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"echo <a&b>"`, `123456789012345678901234567890`, `"fooEntryField":"keep me"`} {
		if !bytes.Contains(out, []byte(s)) {
			t.Errorf("output lost %s: %s", s, out)
		}
	}
}

// TestInjectHooksAlreadyPresent: a stage that holds our hook (same path and
// argv) is left as is, whatever its timeout; if all do, nothing changes.
func TestInjectHooksAlreadyPresent(t *testing.T) {
	hooks := HookSet{Path: testBinary, Timeout: 5}
	first, _, err := InjectHooks([]byte(futureConfig), HookSet{Path: testBinary, Timeout: 30})
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := InjectHooks(first, hooks)
	if err != nil || changed || !bytes.Equal(out, first) {
		t.Errorf("changed=%v err=%v: a different timeout added a second hook", changed, err)
	}
	// Only poststop present: only the two others are added.
	only, _, err := InjectHooks([]byte(futureConfig), HookSet{Path: testBinary, Timeout: 5, Stages: []Stage{Poststop}})
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err = InjectHooks(only, hooks)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	checkInjected(t, only, out, HookSet{Path: testBinary, Timeout: 5, Stages: []Stage{CreateRuntime, Poststart}})
}

func TestInjectHooksErrors(t *testing.T) {
	good := HookSet{Path: testBinary}
	tests := []struct {
		name    string
		in      string
		hooks   HookSet
		wantErr error
	}{
		{"empty", ``, good, ErrInvalidConfig},
		{"null", `null`, good, ErrInvalidConfig},
		{"array", `[]`, good, ErrInvalidConfig},
		{"truncated", futureConfig[:200], good, ErrInvalidConfig},
		{"trailing garbage", `{} {}`, good, ErrInvalidConfig},
		{"hooks is an array", `{"hooks":[]}`, good, ErrInvalidConfig},
		{"hooks is a number", `{"hooks":5}`, good, ErrInvalidConfig},
		{"stage is an object", `{"hooks":{"poststart":{}}}`, good, ErrInvalidConfig},
		{"stage is a string", `{"hooks":{"poststop":"x"}}`, good, ErrInvalidConfig},
		{"relative binary", `{}`, HookSet{Path: "fuseguard"}, ErrInvalidHookSet},
		{"no binary", `{}`, HookSet{}, ErrInvalidHookSet},
		{"negative timeout", `{}`, HookSet{Path: testBinary, Timeout: -1}, ErrInvalidHookSet},
		{"unknown stage", `{}`, HookSet{Path: testBinary, Stages: []Stage{"prestart"}}, ErrUnknownStage},
		{"stage twice", `{}`, HookSet{Path: testBinary, Stages: []Stage{Poststop, Poststop}}, ErrInvalidHookSet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := InjectHooks([]byte(tt.in), tt.hooks)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if out != nil || changed {
				t.Errorf("output %q, changed=%v with an error", out, changed)
			}
		})
	}
}

func TestHookSetHook(t *testing.T) {
	for _, stage := range Stages() {
		h := HookSet{Path: testBinary, Env: []string{"A=1"}}.Hook(stage)
		if h.Path != testBinary || !slices.Equal(h.Args, []string{testBinary, "hook", string(stage)}) {
			t.Errorf("%s: hook %+v", stage, h)
		}
		if h.Timeout == nil || *h.Timeout != DefaultHookTimeout {
			t.Errorf("%s: timeout %v, want default %d", stage, h.Timeout, DefaultHookTimeout)
		}
		if !slices.Equal(h.Env, []string{"A=1"}) {
			t.Errorf("%s: env %v", stage, h.Env)
		}
	}
}

// TestInjectHooksRuncSpec patches the config.json that the real runc
// generates (`runc spec`), the shape the wrapper sees from containerd.
func TestInjectHooksRuncSpec(t *testing.T) {
	runc := testenv.RequireBinary(t, "runc")
	dir := t.TempDir()
	if out, err := exec.Command(runc, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	in, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	hooks := HookSet{Path: testBinary}
	out, changed, err := InjectHooks(in, hooks)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	checkInjected(t, in, out, hooks)
}

func FuzzInjectHooks(f *testing.F) {
	for _, s := range []string{futureConfig, `{}`, `{"hooks":null}`, `{"hooks":{"poststop":[1,{"path":2}]}}`,
		`{"a":1,"a":2,"hooks":{"fooHook":[]}}`, `{"\u0068ooks":{"poststart":[]}}`, `null`, `[`, `{"x":"<\u2028>"}`} {
		f.Add([]byte(s))
	}
	hooks := HookSet{Path: testBinary, Timeout: 3}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, changed, err := InjectHooks(in, hooks)
		if !bytes.Equal(in, orig) {
			t.Fatal("InjectHooks modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error without ErrInvalidConfig: %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not JSON: %q", out)
		}
		before, after := generic(t, in), generic(t, out)
		for k, v := range before {
			w, ok := after[k]
			if !ok {
				t.Fatalf("top-level key %q lost", k)
			}
			if k != "hooks" && !reflect.DeepEqual(v, w) {
				t.Fatalf("top-level %q changed: %v -> %v", k, v, w)
			}
		}
		if changed {
			checkInjected(t, in, out, hooks)
		} else if !bytes.Equal(out, in) {
			t.Fatal("changed=false but the bytes differ")
		}
		again, changed2, err := InjectHooks(out, hooks)
		if err != nil || changed2 || !bytes.Equal(again, out) {
			t.Fatalf("second injection: changed=%v err=%v", changed2, err)
		}
	})
}
