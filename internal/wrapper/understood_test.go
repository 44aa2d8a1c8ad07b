package wrapper

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/fuseguard/fuseguard/internal/oci"
)

// TestWarnNotUnderstood runs the wrapper's part of each command line (all
// but the exec of the real runtime) and checks what it tells the operator:
// a create it cannot parse is an error (the container starts unprotected,
// config.json untouched); unknown flags of a create are a warning, the
// hooks still injected; any other command it cannot parse is a warning;
// a command line it fully understands, containerd 2's create with
// --pidfd-socket included, says nothing above info.
func TestWarnNotUnderstood(t *testing.T) {
	const self = "/usr/local/bin/fuseguard"
	for _, tc := range []struct {
		name    string
		args    string // split on spaces; BUNDLE is the bundle
		level   logrus.Level
		msg     string // in the one warning or error; "" for none
		unknown []string
		id      string // the id the warning names
		hooked  bool   // config.json has the createRuntime hook afterwards
	}{
		{name: "create-unknown-flag", args: "--root /r create --future-flag x --bundle BUNDLE c1",
			level: logrus.WarnLevel, msg: "flags fuseguard does not know", unknown: []string{"--future-flag", "x"}, id: "c1", hooked: true},
		{name: "run-unknown-bool", args: "run -d --future-bool -b BUNDLE c1",
			level: logrus.WarnLevel, msg: "flags fuseguard does not know", unknown: []string{"--future-bool"}, id: "c1", hooked: true},
		{name: "create-no-id", args: "--root /r create --bundle B",
			level: logrus.ErrorLevel, msg: "the container starts WITHOUT fuseguard's hooks"},
		{name: "run-two-ids", args: "run -b BUNDLE c1 c2",
			level: logrus.ErrorLevel, msg: "the container starts WITHOUT fuseguard's hooks"},
		{name: "create-unknown-global-flag", args: "--future-global create --bundle BUNDLE c1",
			level: logrus.ErrorLevel, msg: "the container starts WITHOUT fuseguard's hooks"},
		{name: "state-unknown-global-flag", args: "--future-global state c1",
			level: logrus.WarnLevel, msg: "command line not understood: passed to the runtime as is"},
		{name: "delete-bad-force", args: "delete --force=maybe c1",
			level: logrus.WarnLevel, msg: "command line not understood: passed to the runtime as is"},
		{name: "state-no-id", args: "--root /r state",
			level: logrus.WarnLevel, msg: "command line not understood: passed to the runtime as is"},
		{name: "state-unknown-flag", args: "state --future c1",
			level: logrus.WarnLevel, msg: "flags fuseguard does not know", unknown: []string{"--future"}, id: "c1"},
		{name: "create-containerd2", args: "--root /run/containerd/runc/k8s.io --log /l --log-format json create --bundle BUNDLE --pid-file /p --pidfd-socket /s c1",
			hooked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := t.TempDir()
			conf := []byte(`{"ociVersion":"1.0.2","process":{"args":["sh"]},"root":{"path":"rootfs"}}`)
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), conf, 0o644); err != nil {
				t.Fatal(err)
			}
			args := strings.Split(strings.ReplaceAll(tc.args, "BUNDLE", bundle), " ")
			log, hook := logtest.NewNullLogger()
			w := &Wrapper{Runtime: "/nonexistent/runc", Self: self, Log: log}
			w.defaults()
			if _, _, done := w.handle(context.Background(), args); done {
				t.Fatal("handled without the real runtime's exec")
			}

			var loud []*logrus.Entry
			for _, e := range hook.AllEntries() {
				if e.Level <= logrus.WarnLevel {
					loud = append(loud, e)
				}
			}
			switch {
			case tc.msg == "" && len(loud) != 0:
				t.Errorf("understood, but logged %s: %q", loud[0].Level, loud[0].Message)
			case tc.msg == "":
			case len(loud) != 1:
				t.Errorf("%d warnings or errors, want 1: %v", len(loud), messages(loud))
			default:
				e := loud[0]
				if e.Level != tc.level || !strings.Contains(e.Message, tc.msg) {
					t.Errorf("logged %s %q, want %s containing %q", e.Level, e.Message, tc.level, tc.msg)
				}
				if argv, _ := e.Data["argv"].([]string); !slices.Equal(argv, args) {
					t.Errorf("argv field %q, want %q", e.Data["argv"], args)
				}
				if tc.unknown != nil {
					if got, _ := e.Data["unknown"].([]string); !slices.Equal(got, tc.unknown) || e.Data["id"] != tc.id {
						t.Errorf("unknown %q id %v, want %q %q", e.Data["unknown"], e.Data["id"], tc.unknown, tc.id)
					}
				} else if e.Data[logrus.ErrorKey] == nil {
					t.Error("no error field naming what is wrong")
				}
			}

			b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if hooked := hasHook(t, b, oci.CreateRuntime, self); hooked != tc.hooked {
				t.Errorf("createRuntime hook in config.json: %v, want %v: %s", hooked, tc.hooked, b)
			}
		})
	}
}

func messages(entries []*logrus.Entry) []string {
	var m []string
	for _, e := range entries {
		m = append(m, e.Level.String()+": "+e.Message)
	}
	return m
}

// hasHook reports whether config holds a hook of stage that runs path.
func hasHook(t *testing.T, config []byte, stage oci.Stage, path string) bool {
	t.Helper()
	type hook struct {
		Path string `json:"path"`
	}
	var c struct {
		Hooks map[string][]hook `json:"hooks"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(c.Hooks[string(stage)], func(h hook) bool { return h.Path == path })
}
