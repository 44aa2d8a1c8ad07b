package hook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/hook"
	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestRunRecordsPodUID: the hook records the pod UID that a container's
// annotations name, only in its strict form; a hostile or conflicting
// value is logged and leaves the container belonging to no pod, and a
// later stage whose state carries no annotation keeps what was recorded.
func TestRunRecordsPodUID(t *testing.T) {
	const uid = "0b1e7c6a-4b9d-4f5e-9a53-2d8c1f0e6b7a"
	c := fixture.W4(t)
	for _, tt := range []struct {
		name    string
		ann     map[string]string
		want    string
		warning string
	}{
		{name: "containerd CRI", ann: map[string]string{fuseconn.AnnotationSandboxUID: uid}, want: uid},
		{name: "kubelet's annotation", ann: map[string]string{fuseconn.AnnotationPodUID: uid}, want: uid},
		{name: "none"},
		{name: "escape", ann: map[string]string{fuseconn.AnnotationPodUID: "../../" + uid}, warning: "pod UID annotation refused"},
		{name: "conflict", ann: map[string]string{fuseconn.AnnotationSandboxUID: uid, fuseconn.AnnotationPodUID: strings.Replace(uid, "0b", "1b", 1)}, warning: "disagree"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log, buf := bufferLog()
			store := record.Store{Dir: testenv.StateDir(t)}
			opts := hook.Options{Store: store, Log: log, Getenv: func(string) string { return "" }}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st := &specs.State{ID: "pod", Status: specs.StateCreating, Pid: c.InitPID, Annotations: tt.ann}
			r, err := hook.Run(ctx, oci.CreateRuntime, st, opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.PodUID != tt.want {
				t.Errorf("pod UID %q, want %q", r.PodUID, tt.want)
			}
			if tt.warning != "" && !strings.Contains(buf.String(), tt.warning) {
				t.Errorf("log does not say %q:\n%s", tt.warning, buf)
			}
			st.Status, st.Annotations = specs.StateRunning, nil
			r2, err := hook.Run(ctx, oci.Poststart, st, opts)
			if err != nil {
				t.Fatal(err)
			}
			if loaded, err := store.Load("pod"); err != nil || r2.PodUID != tt.want || loaded.PodUID != tt.want {
				t.Errorf("after poststart: pod UID %q, stored %+v (%v); want %q kept", r2.PodUID, loaded, err, tt.want)
			}
		})
	}
}
