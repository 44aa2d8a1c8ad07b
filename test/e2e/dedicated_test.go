package e2e_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
	"github.com/fuseguard/fuseguard/test/wedgefs"
)

// Pod UIDs of the dedicated tests, in the form the API server writes.
const (
	podUID      = "3f6d2a9e-1c4b-4e8a-9b7d-5a0c2e1f4d6b"
	otherPodUID = "8c1e4f7a-2d3b-4a5c-8e9f-0b1a2c3d4e5f"
)

// csiVolume is a FUSE daemon (wedgefs, never answering a READ) serving a
// volume the way a CSI FUSE driver does: mounted on the host under a
// kubelet-like pod directory, for containers to bind-mount.
type csiVolume struct {
	kubeletPods string // the prefix: <tmp>/kubelet/pods
	dir         string // the host mount point
	conn        uint32
}

// mountCSIVolume mounts the volume at <tmp>/kubelet/pods/<uid>/volumes/
// kubernetes.io~csi/vol/mount, or at <tmp>/elsewhere/mount when outside.
// The cleanup aborts the connection while it is still this mount's (the
// containers' tasks wait on it), then unmounts.
func mountCSIVolume(t *testing.T, uid string, outside bool) *csiVolume {
	t.Helper()
	testenv.RequireFUSE(t)
	tmp := t.TempDir()
	v := &csiVolume{kubeletPods: filepath.Join(tmp, "kubelet", "pods")}
	v.dir = filepath.Join(v.kubeletPods, uid, "volumes", "kubernetes.io~csi", "vol", "mount")
	if outside {
		v.dir = filepath.Join(tmp, "elsewhere", "mount")
	}
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := wedgefs.Mount(v.dir, wedgefs.Options{Mode: wedgefs.ModeRead, Name: "csivol"})
	if err != nil {
		t.Fatal(err)
	}
	if v.conn, err = srv.Conn(); err != nil {
		_ = srv.Unmount()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.abort(t)
		if err := srv.Unmount(); err != nil {
			t.Logf("cleanup: unmount %s: %v", v.dir, err)
		}
	})
	return v
}

// abort aborts the volume's connection if the mount still has it.
func (v *csiVolume) abort(t *testing.T) {
	if id, err := wedgefs.ConnOf(v.dir); err == nil && id == v.conn {
		if err := dockerd.AbortFUSE(id); err != nil {
			t.Logf("cleanup: abort %d: %v", id, err)
		}
	}
}

// requireAborted checks that the volume's connection was aborted: it
// stays in fusectl while the host has it mounted, but every request on it
// fails with ENOTCONN. (wedgefs answers a stat while it is alive: only its
// READ is never answered.)
func (v *csiVolume) requireAborted(t *testing.T) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(v.dir, wedgefs.DataFile), &st); !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("stat on the volume after the rescue: %v, want ENOTCONN (connection %d aborted)", err, v.conn)
	}
}

// podContainer creates and starts, through the wrapper (so its hooks
// record it), a runc container of pod uid ("": no annotation) with v bind
// mounted at /mnt/f, running args; every container of a test shares the
// state directory of first (nil: this one's).
func podContainer(t *testing.T, v *csiVolume, uid string, first *runcBundle, args ...string) *runcBundle {
	t.Helper()
	b := newRuncBundle(t, testenv.RequireBinary(t, "runc"), args...)
	// Cleanups run last-registered first: abort the volume before runc
	// kills and deletes the container, which would wait on it.
	t.Cleanup(func() { v.abort(t) })
	if first != nil {
		b.stateDir = first.stateDir
	}
	editConfig(t, b.dir, func(c map[string]any) {
		c["mounts"] = append(c["mounts"].([]any), map[string]any{
			"destination": "/mnt/f", "type": "bind", "source": v.dir, "options": []any{"rbind", "rw"},
		})
		if uid != "" {
			c["annotations"] = map[string]any{fuseguard.AnnotationPodUID: uid}
		}
	})
	out, err := os.Create(b.out)
	if err != nil {
		t.Fatal(err)
	}
	bin := fgcmd.Binary(t)
	cr := runWithOutput(t, out, bin, "runtime", "--fuseguard-runtime", b.runc, "--fuseguard-state-dir="+b.stateDir,
		"--root", b.root, "create", "--bundle", b.dir, b.id)
	out.Close()
	if cr.code != 0 {
		t.Fatalf("runtime create: exit %d: %s\n%s", cr.code, cr.stderr, mustRead(b.out))
	}
	if r := b.wrapper(t, 20*time.Second, "start", b.id); r.code != 0 {
		t.Fatalf("runtime start: %d %s", r.code, r.stderr)
	}
	rec, err := (fuseguard.Store{Dir: b.stateDir}).Load(b.id)
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
func wedgedPodContainer(t *testing.T, v *csiVolume, uid string, first *runcBundle) *runcBundle {
	t.Helper()
	b := podContainer(t, v, uid, first, "/fusefixture", "init", "--", "/fusefixture", "read", "/mnt/f/"+wedgefs.DataFile)
	waitParked(t, v.conn)
	return b
}

// waitParked waits until a request is waiting on connection conn.
func waitParked(t *testing.T, conn uint32) {
	t.Helper()
	p := filepath.Join(dockerd.FusectlDir, strconv.FormatUint(uint64(conn), 10), "waiting")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) != "0" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no request waiting on connection %d after 20s", conn)
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
func refusedWith(t *testing.T, rep killer.Report, conn uint32, class killer.Refusal, why string) {
	t.Helper()
	if rep.Outcome != killer.OutcomeStillStuck {
		t.Errorf("outcome %s, want %s", rep.Outcome, killer.OutcomeStillStuck)
	}
	if len(rep.Aborted) != 0 {
		t.Errorf("aborted %+v, want nothing", rep.Aborted)
	}
	for _, a := range rep.Refused {
		if uint32(a.Conn) == conn {
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
		v := mountCSIVolume(t, podUID, false)
		b := wedgedPodContainer(t, v, podUID, nil)
		refusedWith(t, killJSON(t, b), v.conn, killer.RefusalShared, "shared with the host")
	})
	t.Run("switch on in config.toml: the wrapper's kill rescues", func(t *testing.T) {
		v := mountCSIVolume(t, podUID, false)
		b := wedgedPodContainer(t, v, podUID, nil)
		cfg := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(cfg, []byte("[policy]\ndedicated_prefixes = [\""+v.kubeletPods+"\"]\n"), 0o644); err != nil {
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
		v.requireAborted(t)
		log := strings.Join(fgcmd.LogLines(filepath.Join(b.stateDir, "runtime.log"), b.id), "\n")
		if !strings.Contains(log, `"outcome":"recovered"`) || !strings.Contains(log, "dedicated to pod "+podUID) {
			t.Errorf("runtime.log has no recovered outcome naming the dedicated class:\n%s", log)
		}
	})
	t.Run("switch on: the same pod's other container does not count", func(t *testing.T) {
		v := mountCSIVolume(t, podUID, false)
		sibling := podContainer(t, v, podUID, nil, "/bin/sleep", "1000")
		b := wedgedPodContainer(t, v, podUID, sibling)
		rep := killJSON(t, b, "--dedicated-prefix", v.kubeletPods)
		if rep.Outcome != killer.OutcomeRecovered || len(rep.Aborted) != 1 || uint32(rep.Aborted[0].Conn) != v.conn || !rep.Aborted[0].Dedicated {
			t.Fatalf("outcome %s, aborted %+v, refused %+v: want connection %d aborted as dedicated", rep.Outcome, rep.Aborted, rep.Refused, v.conn)
		}
		v.requireAborted(t)
		if st, ok := sibling.state(t); !ok || st.Status != "running" {
			t.Errorf("the sibling container: %+v (known %v), want it running: only the wedged one was killed", st, ok)
		}
	})
	t.Run("switch on: another pod's live container uses it: refused", func(t *testing.T) {
		v := mountCSIVolume(t, podUID, false)
		other := podContainer(t, v, otherPodUID, nil, "/bin/sleep", "1000")
		b := wedgedPodContainer(t, v, podUID, other)
		// diagnose names the class and why, before any kill.
		st, _ := b.state(t)
		d := run(t, 30*time.Second, nil, nil, fgcmd.Binary(t), "diagnose", "--state-dir", b.stateDir, "--id", b.id,
			"--dedicated-prefix", v.kubeletPods, strconv.Itoa(st.Pid))
		if want := "shared (not dedicated to pod " + podUID + ": used by another live container " + other.id + ")"; !strings.Contains(d.stdout, want) {
			t.Errorf("diagnose does not say %q:\n%s%s", want, d.stdout, d.stderr)
		}
		refusedWith(t, killJSON(t, b, "--dedicated-prefix", v.kubeletPods), v.conn, killer.RefusalNotDedicated,
			"not dedicated to pod "+podUID+": used by another live container "+other.id)
	})
	t.Run("switch on: mounted outside the pod's volume dir: refused", func(t *testing.T) {
		v := mountCSIVolume(t, podUID, true)
		b := wedgedPodContainer(t, v, podUID, nil)
		refusedWith(t, killJSON(t, b, "--dedicated-prefix", v.kubeletPods), v.conn, killer.RefusalNotDedicated,
			"mounted outside the pod's volume dir")
	})
	t.Run("switch on: no pod annotation: refused", func(t *testing.T) {
		v := mountCSIVolume(t, podUID, false)
		b := wedgedPodContainer(t, v, "", nil)
		refusedWith(t, killJSON(t, b, "--dedicated-prefix", v.kubeletPods), v.conn, killer.RefusalNotDedicated, "names no pod")
	})
}
