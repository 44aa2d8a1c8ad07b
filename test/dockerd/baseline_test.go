package dockerd_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestBaselineW2 shows, with plain runc and no fuseguard, the bug the
// project fixes: a container whose FUSE daemon wedges itself on its own
// mount (W2) survives `docker kill`, which fails after Docker's own wait,
// until its connection is aborted; then it exits and can be removed.
//
// Docker 20.10 words the failure after how init looks when it checks, 10 s
// after its SIGKILL. A single-threaded init (busybox sh) waits in
// zap_pid_ns_processes in state S: "did not receive an exit event", after
// 12 s. A Go init (the FUSE daemon itself, or fusefixture init) has
// several threads; when its leader thread happens to exit before the last
// one, /proc shows it as a zombie and Docker answers "is zombie and can
// not be killed" after 10 s instead, so either answer is accepted there.
func TestBaselineW2(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.RequireLong(t)
	bin := fixture.Binary(t)
	d := dockerd.Start(t, dockerd.Options{DefaultRuntime: "runc"})
	image := d.ImportImage(t, "fgtest/fusefixture:w2", map[string]string{"/fusefixture": bin})

	serve := []string{"/fusefixture", "serve", "-mode", "read", "-mount", "/mnt", "-self-read"}
	for _, tc := range []struct {
		name    string
		cmd     []string
		killErr []string // any of
	}{
		// "; true" keeps sh from exec'ing the daemon: sh stays init.
		{"sh-init", []string{"sh", "-c", strings.Join(serve, " ") + "; true"}, []string{exitEventErr}},
		{"daemon-as-init", serve, []string{exitEventErr, zombieErr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			baselineW2(t, d, image, tc.cmd, tc.killErr)
		})
	}
}

// Docker 20.10's answers to a kill whose container does not die.
const (
	exitEventErr = "tried to kill container, but did not receive an exit event"
	zombieErr    = "is zombie and can not be killed"
)

func baselineW2(t *testing.T, d *dockerd.Daemon, image string, cmd []string, wantKillErr []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := d.RunDetached(ctx, image, "runc", dockerd.FUSERunArgs(), cmd...)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := d.WaitLog(ctx, id, "fusefixture: ready role=serve")
	if err != nil {
		t.Fatalf("%v\n--- container log ---\n%s", err, logs)
	}
	conn := uint32(fixture.ConnFromOutput(t, logs))
	// Whatever happens below, the wedge must not outlive the test.
	d.OnCleanup(func() {
		if err := d.AbortFUSE(conn); err != nil {
			t.Errorf("abort connection %d: %v", conn, err)
		}
	})

	st, err := d.Inspect(ctx, id)
	if err != nil || !st.Running {
		t.Fatalf("armed container: %+v, %v", st, err)
	}
	conns, err := dockerd.FUSEConns(st.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(conns, conn) {
		t.Fatalf("FUSEConns(init %d) = %v, want the fixture's connection %d", st.Pid, conns, conn)
	}

	killStart := time.Now()
	killErr := d.Kill(ctx, id)
	t.Logf("docker kill of W2 under runc took %v: %v", time.Since(killStart).Round(time.Millisecond), killErr)
	if killErr == nil {
		t.Fatal("docker kill of a W2 container succeeded under plain runc; the baseline no longer shows the bug")
	}
	if !slices.ContainsFunc(wantKillErr, func(s string) bool { return strings.Contains(killErr.Error(), s) }) {
		t.Fatalf("docker kill failed, but not with any of %q: %v", wantKillErr, killErr)
	}
	st, err = d.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.Status != "running" {
		t.Fatalf("after the failed kill: %+v, want still running", st)
	}
	// Init has lost its mount table by now; the stuck thread still shows
	// the connection.
	if conns, err := dockerd.FUSEConns(st.Pid); err != nil || !slices.Contains(conns, conn) {
		t.Fatalf("FUSEConns(init %d) after the kill = %v (%v), want %d still visible", st.Pid, conns, err, conn)
	}

	abortStart := time.Now()
	if err := d.AbortFUSE(conn); err != nil {
		t.Fatal(err)
	}
	st, err = d.WaitExited(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("container exited %v after the abort", time.Since(abortStart).Round(time.Millisecond))
	if st.Status != "exited" || st.ExitCode != 137 {
		t.Fatalf("after the abort: %+v, want exited 137", st)
	}
	if err := d.Rm(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(ctx, id); err == nil {
		t.Fatalf("container %.12s still known to Docker after docker rm", id)
	}
}
