package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fgwatch"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// Pod UIDs of the dedicated tests, in the form the API server writes.
const (
	podUID      = "3f6d2a9e-1c4b-4e8a-9b7d-5a0c2e1f4d6b"
	otherPodUID = "8c1e4f7a-2d3b-4a5c-8e9f-0b1a2c3d4e5f"
)

// podContainer creates and starts, through the wrapper (so its hooks
// record it), a runc container of pod uid ("": no annotation) with v bind
// mounted at /mnt/f, running args; every container of a test shares the
// state directory of first (nil: this one's).
func podContainer(t *testing.T, v *fixture.CSIVolume, uid string, first *runcBundle, args ...string) *runcBundle {
	t.Helper()
	b := newRuncBundle(t, testenv.RequireBinary(t, "runc"), args...)
	// Cleanups run last-registered first: abort the volume before runc
	// kills and deletes the container, which would wait on it.
	t.Cleanup(func() { v.Abort(t) })
	if first != nil {
		b.stateDir = first.stateDir
	}
	editConfig(t, b.dir, func(c map[string]any) {
		c["mounts"] = append(c["mounts"].([]any), map[string]any{
			"destination": "/mnt/f", "type": "bind", "source": v.Dir, "options": []any{"rbind", "rw"},
		})
		if uid != "" {
			c["annotations"] = map[string]any{fuseconn.AnnotationPodUID: uid}
		}
	})
	b.startThroughWrapper(t)
	rec, err := (record.Store{Dir: b.stateDir}).Load(b.id)
	if err != nil {
		t.Fatalf("no record: %v\nhook.log:\n%s", err, mustRead(filepath.Join(b.stateDir, "hook.log")))
	}
	if rec.PodUID != uid {
		t.Fatalf("record's pod UID %q, want %q (from config.json's annotations)", rec.PodUID, uid)
	}
	return b
}

// wedgedPodContainer is podContainer whose process reads the volume's
// file; it returns once the read is parked in the kernel.
func wedgedPodContainer(t *testing.T, v *fixture.CSIVolume, uid string, first *runcBundle) *runcBundle {
	t.Helper()
	b := podContainer(t, v, uid, first, "/fusefixture", "init", "--", "/fusefixture", "read", "/mnt/f/"+fixture.CSIVolumeFile)
	v.WaitParked(t)
	return b
}

// killJSON runs `fuseguard kill --json` on b's init with its record and
// the extra flags, and returns the report.
func killJSON(t *testing.T, b *runcBundle, flags ...string) killer.Report {
	t.Helper()
	st, ok := b.state(t)
	if !ok || st.Pid <= 0 {
		t.Fatalf("container %s: state %+v", b.id, st)
	}
	argv := append([]string{fgcmd.Binary(t), "kill", "--json", "--state-dir", b.stateDir, "--id", b.id}, flags...)
	r := run(t, 30*time.Second, nil, nil, append(argv, strconv.Itoa(st.Pid))...)
	var rep killer.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("kill: exit %d: %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
	}
	return rep
}

// refusedWith checks that rep kept conn, classed class, saying why.
func refusedWith(t *testing.T, rep killer.Report, conn fuseconn.ConnID, class killer.Refusal, why string) {
	t.Helper()
	if rep.Outcome != killer.OutcomeStillStuck {
		t.Errorf("outcome %s, want %s", rep.Outcome, killer.OutcomeStillStuck)
	}
	if len(rep.Aborted) != 0 {
		t.Errorf("aborted %+v, want nothing", rep.Aborted)
	}
	for _, a := range rep.Refused {
		if a.Conn == conn {
			if a.Refusal != class || !strings.Contains(a.Reason, why) {
				t.Errorf("refusal of %d: %s %q, want %s saying %q", conn, a.Refusal, a.Reason, class, why)
			}
			return
		}
	}
	t.Errorf("connection %d not refused: %+v", conn, rep.Refused)
}

// TestDedicatedCSIVolume: a FUSE volume mounted on the host under a
// kubelet-like pod directory and bind-mounted into a runc container
// annotated with the pod's UID, whose process wedges on it. It is shared
// with the host, so by default it is refused as shared; with the
// dedicated class on it is the pod's own and the kill rescues the
// container, unless a live container of another pod uses it too, or the
// host has it mounted outside the pod's volume directory.
func TestDedicatedCSIVolume(t *testing.T) {
	t.Run("switch off: refused as shared", func(t *testing.T) {
		v := fixture.MountCSIVolume(t, podUID, false)
		b := wedgedPodContainer(t, v, podUID, nil)
		refusedWith(t, killJSON(t, b), v.Conn, killer.RefusalShared, "shared with the host")
	})
	t.Run("switch on in config.toml: the wrapper's kill rescues", func(t *testing.T) {
		v := fixture.MountCSIVolume(t, podUID, false)
		b := wedgedPodContainer(t, v, podUID, nil)
		cfg := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(cfg, []byte("[policy]\ndedicated_prefixes = [\""+v.KubeletPods+"\"]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, 30*time.Second, nil, nil, fgcmd.Binary(t), "runtime", "--fuseguard-runtime="+b.runc, "--fuseguard-state-dir", b.stateDir,
			"--fuseguard-config", cfg, "--root", b.root, "kill", b.id, "KILL")
		if r.code != 0 {
			t.Fatalf("runtime kill: exit %d: %s", r.code, r.stderr)
		}
		if st, ok := b.state(t); !ok || st.Status != "stopped" {
			t.Errorf("after runtime kill: %+v (known %v), want stopped", st, ok)
		}
		v.RequireAborted(t)
		log := strings.Join(fgcmd.LogLines(filepath.Join(b.stateDir, "runtime.log"), b.id), "\n")
		if !strings.Contains(log, `"outcome":"recovered"`) || !strings.Contains(log, "dedicated to pod "+podUID) {
			t.Errorf("runtime.log has no recovered outcome naming the dedicated class:\n%s", log)
		}
	})
	t.Run("switch on in config.toml: the watcher rescues after a plain runc kill", func(t *testing.T) {
		v := fixture.MountCSIVolume(t, podUID, false)
		dir := testenv.StateDir(t)
		cfg := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(cfg, []byte("[policy]\ndedicated_prefixes = [\""+v.KubeletPods+"\"]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		fgwatch.StartWatcher(t, dir, "watch.log", "--config", cfg)
		b := wedgedPodContainer(t, v, podUID, &runcBundle{stateDir: dir})
		rec, err := (record.Store{Dir: dir}).Load(b.id)
		if err != nil {
			t.Fatal(err)
		}
		// Not through the wrapper: only the watcher can rescue. (runc
		// reports a wedged init as stopped at once: its state proves
		// nothing.)
		if r := run(t, 10*time.Second, nil, nil, b.runc, "--root", b.root, "kill", b.id, "KILL"); r.code != 0 {
			t.Fatalf("runc kill: %d %s", r.code, r.stderr)
		}
		log := waitFile(t, filepath.Join(dir, "watch.log"), `"outcome":"recovered"`, 30*time.Second)
		if !strings.Contains(log, "dedicated to pod "+podUID) {
			t.Errorf("watch.log does not name the dedicated class:\n%s", log)
		}
		v.RequireAborted(t)
		// Gone, or a zombie its parent has yet to reap: it exited.
		if st, err := proc.NewFS("").Stat(context.Background(), rec.InitPID); err == nil && st.StartTime == rec.InitStartTime && st.State != "Z" {
			t.Errorf("init %d in state %s after the rescue, want it exited", rec.InitPID, st.State)
		}
	})
	t.Run("switch on: the same pod's other container does not count", func(t *testing.T) {
		v := fixture.MountCSIVolume(t, podUID, false)
		sibling := podContainer(t, v, podUID, nil, "/bin/sleep", "1000")
		b := wedgedPodContainer(t, v, podUID, sibling)
		rep := killJSON(t, b, "--dedicated-prefix", v.KubeletPods)
		if rep.Outcome != killer.OutcomeRecovered || len(rep.Aborted) != 1 || rep.Aborted[0].Conn != v.Conn || !rep.Aborted[0].Dedicated {
			t.Fatalf("outcome %s, aborted %+v, refused %+v: want connection %d aborted as dedicated", rep.Outcome, rep.Aborted, rep.Refused, v.Conn)
		}
		v.RequireAborted(t)
		if st, ok := sibling.state(t); !ok || st.Status != "running" {
			t.Errorf("the sibling container: %+v (known %v), want it running: only the wedged one was killed", st, ok)
		}
	})
	t.Run("switch on: another pod's live container uses it: refused", func(t *testing.T) {
		v := fixture.MountCSIVolume(t, podUID, false)
		other := podContainer(t, v, otherPodUID, nil, "/bin/sleep", "1000")
		b := wedgedPodContainer(t, v, podUID, other)
		// diagnose names the class and why, before any kill.
		st, _ := b.state(t)
		d := run(t, 30*time.Second, nil, nil, fgcmd.Binary(t), "diagnose", "--state-dir", b.stateDir, "--id", b.id,
			"--dedicated-prefix", v.KubeletPods, strconv.Itoa(st.Pid))
		if want := "shared (not dedicated to pod " + podUID + ": used by another live container " + other.id + ")"; !strings.Contains(d.stdout, want) {
			t.Errorf("diagnose does not say %q:\n%s%s", want, d.stdout, d.stderr)
		}
		refusedWith(t, killJSON(t, b, "--dedicated-prefix", v.KubeletPods), v.Conn, killer.RefusalNotDedicated,
			"not dedicated to pod "+podUID+": used by another live container "+other.id)
	})
	t.Run("switch on: mounted outside the pod's volume dir: refused", func(t *testing.T) {
		v := fixture.MountCSIVolume(t, podUID, true)
		b := wedgedPodContainer(t, v, podUID, nil)
		refusedWith(t, killJSON(t, b, "--dedicated-prefix", v.KubeletPods), v.Conn, killer.RefusalNotDedicated,
			"mounted outside the pod's volume dir")
	})
	t.Run("switch on: no pod annotation: refused", func(t *testing.T) {
		v := fixture.MountCSIVolume(t, podUID, false)
		b := wedgedPodContainer(t, v, "", nil)
		refusedWith(t, killJSON(t, b, "--dedicated-prefix", v.KubeletPods), v.Conn, killer.RefusalNotDedicated, "names no pod")
	})
}
