package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fuseguard/fuseguard/record"
)

// stateJSON returns a State as a runtime writes it, with edit applied to
// its generic form (so fields can be removed or mistyped).
func stateJSON(t testing.TB, edit func(m map[string]any)) string {
	t.Helper()
	m := map[string]any{
		"ociVersion":  "1.0.2-dev",
		"id":          "c0ffee-1",
		"status":      "creating",
		"pid":         4242,
		"bundle":      "/run/containerd/io.containerd.runtime.v2.task/moby/c0ffee-1",
		"annotations": map[string]any{"org.example/x": "y"},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadState(t *testing.T) {
	valid := stateJSON(t, nil)
	huge := stateJSON(t, func(m map[string]any) {
		m["annotations"] = map[string]any{"big": strings.Repeat("x", 2<<20)}
	})
	tests := []struct {
		name    string
		in      string
		stage   Stage
		wantErr error // nil: must succeed
	}{
		{"valid createRuntime", valid, CreateRuntime, nil},
		{"valid poststart", stateJSON(t, func(m map[string]any) { m["status"] = "running" }), Poststart, nil},
		{"poststop without pid", stateJSON(t, func(m map[string]any) { delete(m, "pid"); m["status"] = "stopped" }), Poststop, nil},
		{"unknown fields of a newer spec", stateJSON(t, func(m map[string]any) { m["fooFuture"] = []any{1, "a"} }), CreateRuntime, nil},
		{"surrounding whitespace", "\n\t " + valid + "\n\n", CreateRuntime, nil},
		{"runc paused", stateJSON(t, func(m map[string]any) { m["status"] = "paused" }), Poststart, nil},

		{"empty stdin", "", CreateRuntime, ErrInvalidState},
		{"whitespace only", " \n\t", CreateRuntime, ErrInvalidState},
		{"truncated JSON", valid[:len(valid)/2], CreateRuntime, ErrInvalidState},
		{"non-JSON", "hello, runtime", CreateRuntime, ErrInvalidState},
		{"null", "null", CreateRuntime, ErrInvalidState},
		{"array", "[" + valid + "]", CreateRuntime, ErrInvalidState},
		{"two objects", valid + valid, CreateRuntime, ErrInvalidState},
		{"trailing garbage", valid + " x", CreateRuntime, ErrInvalidState},
		{"2 MiB state", huge, CreateRuntime, ErrStateTooLarge},
		{"pid as string", stateJSON(t, func(m map[string]any) { m["pid"] = "4242" }), CreateRuntime, ErrInvalidState},
		{"missing pid", stateJSON(t, func(m map[string]any) { delete(m, "pid") }), CreateRuntime, ErrInvalidState},
		{"zero pid", stateJSON(t, func(m map[string]any) { m["pid"] = 0 }), Poststart, ErrInvalidState},
		{"negative pid", stateJSON(t, func(m map[string]any) { m["pid"] = -1 }), Poststop, ErrInvalidState},
		{"missing id", stateJSON(t, func(m map[string]any) { delete(m, "id") }), CreateRuntime, ErrInvalidState},
		{"empty id", stateJSON(t, func(m map[string]any) { m["id"] = "" }), CreateRuntime, ErrInvalidState},
		{"unknown status", stateJSON(t, func(m map[string]any) { m["status"] = "exploded" }), CreateRuntime, ErrInvalidState},
		{"missing status", stateJSON(t, func(m map[string]any) { delete(m, "status") }), CreateRuntime, ErrInvalidState},
		{"relative bundle", stateJSON(t, func(m map[string]any) { m["bundle"] = "bundles/c0ffee-1" }), CreateRuntime, ErrInvalidState},
		{"missing bundle", stateJSON(t, func(m map[string]any) { delete(m, "bundle") }), CreateRuntime, ErrInvalidState},
		{"unknown stage", valid, Stage("prestart"), ErrUnknownStage},
		{"empty stage", valid, Stage(""), ErrUnknownStage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ReadState(strings.NewReader(tt.in), tt.stage)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ReadState err = %v, want %v", err, tt.wantErr)
				}
				if st != nil {
					t.Errorf("ReadState returned a state with error %v", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadState: %v", err)
			}
			// The decoded State must be exactly what json gives for the input.
			var want specs.State
			if err := json.Unmarshal([]byte(strings.TrimSpace(tt.in)), &want); err != nil {
				t.Fatal(err)
			}
			if st.ID != want.ID || st.Pid != want.Pid || st.Status != want.Status || st.Bundle != want.Bundle ||
				st.Version != want.Version || len(st.Annotations) != len(want.Annotations) {
				t.Errorf("ReadState = %+v, want %+v", *st, want)
			}
		})
	}
}

// TestReadStateID checks ids against record.ValidateID, the rule records
// are named by.
func TestReadStateID(t *testing.T) {
	for _, id := range []string{"c0ffee-1", "ab_c.d-E9", "../etc", "a/b", ".hidden", "white space", "x\x00y", strings.Repeat("a", 1024)} {
		t.Run(id, func(t *testing.T) {
			in := stateJSON(t, func(m map[string]any) { m["id"] = id })
			_, err := ReadState(strings.NewReader(in), CreateRuntime)
			idErr := record.ValidateID(id)
			if (idErr == nil) != (err == nil) {
				t.Fatalf("ReadState err = %v, but ValidateID(%q) = %v", err, id, idErr)
			}
			if err != nil && (!errors.Is(err, ErrInvalidState) || !errors.Is(err, record.ErrInvalidID)) {
				t.Errorf("err = %v, want both ErrInvalidState and record.ErrInvalidID", err)
			}
		})
	}
	// The rule must reject path tricks, or a record could escape the state dir.
	if record.ValidateID("../etc") == nil {
		t.Error(`ValidateID("../etc") accepted a path`)
	}
}

// TestReadStateLimit checks the exact boundary of MaxStateSize.
func TestReadStateLimit(t *testing.T) {
	valid := stateJSON(t, nil)
	atLimit := valid + strings.Repeat(" ", MaxStateSize-len(valid))
	if _, err := ReadState(strings.NewReader(atLimit), CreateRuntime); err != nil {
		t.Errorf("state of exactly MaxStateSize bytes: %v", err)
	}
	if _, err := ReadState(strings.NewReader(atLimit+" "), CreateRuntime); !errors.Is(err, ErrStateTooLarge) {
		t.Errorf("state of MaxStateSize+1 bytes: err = %v, want ErrStateTooLarge", err)
	}
	// An endless stdin must not be read to its end.
	r := &countingReader{r: infinite{}}
	if _, err := ReadState(r, CreateRuntime); !errors.Is(err, ErrStateTooLarge) {
		t.Errorf("endless stdin: err = %v", err)
	}
	if r.n > MaxStateSize+1 {
		t.Errorf("read %d bytes of an endless stdin, limit is %d", r.n, MaxStateSize+1)
	}
}

// TestReadStatePipe reads the State through a real pipe, as a hook's stdin.
func TestReadStatePipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	in := stateJSON(t, nil)
	go func() {
		// Small writes: the reader must not stop at the first short read.
		for i := 0; i < len(in); i += 7 {
			w.Write([]byte(in[i:min(i+7, len(in))]))
		}
		w.Close()
	}()
	st, err := ReadState(r, CreateRuntime)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid != 4242 || st.ID != "c0ffee-1" {
		t.Errorf("state = %+v", st)
	}
}

func TestReadStateReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadState(io.MultiReader(strings.NewReader("{"), iotest.ErrReader(boom)), CreateRuntime)
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}
}

type infinite struct{}

func (infinite) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func FuzzReadState(f *testing.F) {
	f.Add([]byte(stateJSON(f, nil)), "createRuntime")
	f.Add([]byte(stateJSON(f, func(m map[string]any) { delete(m, "pid"); m["status"] = "stopped" })), "poststop")
	f.Add([]byte(`{"id":"a","status":"running","pid":1,"bundle":"/"}`), "poststart")
	f.Add([]byte(`{"id":"../a","pid":1e99}`), "poststart")
	f.Add([]byte(`null`), "createRuntime")
	f.Add([]byte(``), "poststop")
	f.Fuzz(func(t *testing.T, data []byte, stage string) {
		orig := bytes.Clone(data)
		st, err := ReadState(bytes.NewReader(data), Stage(stage))
		if !bytes.Equal(orig, data) {
			t.Fatal("ReadState modified its input")
		}
		if err != nil {
			if st != nil {
				t.Fatal("state returned with an error")
			}
			if !errors.Is(err, ErrInvalidState) && !errors.Is(err, ErrStateTooLarge) && !errors.Is(err, ErrUnknownStage) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if err := ValidateState(st, Stage(stage)); err != nil {
			t.Fatalf("accepted state fails validation: %v", err)
		}
		// What was accepted survives a round trip unchanged.
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := ReadState(bytes.NewReader(b), Stage(stage))
		if err != nil {
			t.Fatalf("re-encoded state rejected: %v\n%s", err, b)
		}
		if st2.ID != st.ID || st2.Pid != st.Pid || st2.Status != st.Status || st2.Bundle != st.Bundle {
			t.Fatalf("round trip changed the state: %+v != %+v", st2, st)
		}
	})
}
