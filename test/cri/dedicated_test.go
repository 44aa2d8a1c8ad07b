package cri_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/wrapper"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/cri"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestCRIDedicatedCSIVolume is the Kubernetes wedge the dedicated class is
// for, driven through containerd 2's CRI as kubelet drives it: a FUSE
// volume mounted on the host under <kubelet>/pods/<pod UID>/volumes/…,
// as CSI FUSE drivers do, bind-mounted into a pod's container whose
// process wedges reading it. The pod's UID reaches fuseguard only through
// the annotation containerd's CRI plugin writes. With the node
// configuration's dedicated_prefixes naming the kubelet directory, the
// wrapper's kill at StopContainer aborts the volume and the container
// exits; while a container of another pod also has the volume mounted,
// the rescue refuses, naming that container, and the stop fails as
// without fuseguard.
func TestCRIDedicatedCSIVolume(t *testing.T) {
	testenv.RequireLong(t)
	runc := testenv.RequireTool(t, "runc-1.3", "bin/runc-1.3")
	fix := fixture.Binary(t)
	stateDir := testenv.StateDir(t)
	// The wrapper reads the file at every kill: each subtest writes the
	// prefix of its own volume.
	cfg := filepath.Join(t.TempDir(), "config.toml")
	d := cri.Start(t, cri.Options{
		Runtimes: map[string]string{handlerRunc: runc, handlerFuseguard: ""},
		Imports:  []string{deploySnippet(t, "fuseguard.toml", fgcmd.Runtime(t))},
		Env: []string{record.EnvStateDir + "=" + stateDir, wrapper.EnvRuntime + "=" + runc, "FUSEGUARD_WATCHER=0",
			"FUSEGUARD_CONFIG=" + cfg},
	})
	d.ImportImage(t, cri.SandboxImage, []string{"sleep", "2147483647"}, nil)
	image := d.ImportImage(t, "docker.io/fgtest/fusefixture:1", []string{"sleep", "2147483647"}, map[string]string{"/fusefixture": fix})

	// start runs a pod of its own UID with one container bind-mounting v.
	start := func(t *testing.T, ctx context.Context, v *fixture.CSIVolume, uid, name string, cmd ...string) (*cri.Pod, string) {
		t.Helper()
		pod, err := d.RunPod(ctx, cri.PodConfig{Name: name, UID: uid}, handlerFuseguard)
		if err != nil {
			t.Fatal(err)
		}
		id, err := pod.CreateContainer(ctx, cri.ContainerConfig{Name: name, Image: image, Command: cmd, Mounts: map[string]string{"/mnt/f": v.Dir}})
		if err != nil {
			t.Fatalf("%v\n--- containerd log ---\n%s", err, d.LogTail(20))
		}
		return pod, id
	}
	// No CAP_SYS_ADMIN, as a pod has by default: init leaves / as it is.
	reader := []string{"/fusefixture", "init", "-private=false", "--", "/fusefixture", "read", "/mnt/f/" + fixture.CSIVolumeFile}
	setPrefix := func(t *testing.T, v *fixture.CSIVolume) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte("[policy]\ndedicated_prefixes = [\""+v.KubeletPods+"\"]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("rescued as the pod's own", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		uid := podUID(t)
		v := fixture.MountCSIVolume(t, uid, false)
		setPrefix(t, v)
		pod, id := start(t, ctx, v, uid, "reader", reader...)
		t.Cleanup(func() { v.Abort(t) })
		waitParked(t, v, pod, "reader")
		begin := time.Now()
		if err := d.Stop(ctx, id, grace, cri.CallTimeout); err != nil {
			t.Fatalf("StopContainer: %v\n--- runtime.log ---\n%s", err, strings.Join(fgcmd.LogLines(filepath.Join(stateDir, "runtime.log"), id), "\n"))
		}
		if took, bound := time.Since(begin), grace+(killer.Options{}).Bound(); took > bound {
			t.Errorf("StopContainer returned after %v, bound %v (grace + fuseguard's rescue)", took, bound)
		}
		if st, err := d.Inspect(ctx, id); err != nil || st.State != "CONTAINER_EXITED" {
			t.Errorf("after StopContainer: %+v, %v; want exited", st, err)
		}
		v.RequireAborted(t)
		lines := fgcmd.LogLines(filepath.Join(stateDir, "runtime.log"), id)
		if !slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, `"outcome":"recovered"`) && strings.Contains(l, "dedicated to pod "+uid)
		}) {
			t.Errorf("no recovered rescue naming the dedicated class in runtime.log:\n%s", strings.Join(lines, "\n"))
		}
		removePod(t, ctx, d, pod)
	})

	t.Run("refused while another pod's container uses it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		uid, otherUID := podUID(t), podUID(t)
		v := fixture.MountCSIVolume(t, uid, false)
		setPrefix(t, v)
		otherPod, otherID := start(t, ctx, v, otherUID, "user", "/fusefixture", "init", "-private=false", "--", "sleep", "2147483647")
		pod, id := start(t, ctx, v, uid, "reader", reader...)
		t.Cleanup(func() { v.Abort(t) })
		waitParked(t, v, pod, "reader")
		err := d.Stop(ctx, id, grace, baselineRequest)
		if err == nil {
			t.Fatal("StopContainer succeeded: the volume another pod uses was aborted")
		}
		lines := fgcmd.LogLines(filepath.Join(stateDir, "runtime.log"), id)
		want := "not dedicated to pod " + uid + ": used by another live container " + otherID
		if !slices.ContainsFunc(lines, func(l string) bool {
			return strings.Contains(l, want) && strings.Contains(l, string(killer.RefusalNotDedicated))
		}) {
			t.Errorf("runtime.log does not say %q:\n%s", want, strings.Join(lines, "\n"))
		}
		if st, err := d.Inspect(ctx, otherID); err != nil || st.State != "CONTAINER_RUNNING" {
			t.Errorf("the other pod's container: %+v, %v; want running", st, err)
		}
		// End the wedge as an operator would, then tear down.
		v.Abort(t)
		for begin := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			if st, err := d.Inspect(ctx, id); err == nil && st.State == "CONTAINER_EXITED" {
				break
			}
			if time.Since(begin) > exitTimeout {
				t.Fatalf("not exited %v after the abort", exitTimeout)
			}
		}
		removePod(t, ctx, d, pod)
		if err := d.Stop(ctx, otherID, grace, cri.CallTimeout); err != nil {
			t.Errorf("stop the other pod's container: %v", err)
		}
		removePod(t, ctx, d, otherPod)
	})
}

// waitParked waits until the container's read is parked on v, showing
// its log when it never is.
func waitParked(t *testing.T, v *fixture.CSIVolume, pod *cri.Pod, name string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- log of %s ---\n%s", name, pod.Log(name))
		}
	})
	v.WaitParked(t)
}
