package dockerd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestHealthyKill is W4 through plain runc: a container starts, runs with
// a pid, dies from `docker kill` with 137 and is removed, and nothing of
// it is left.
func TestHealthyKill(t *testing.T) {
	start := time.Now()
	d := dockerd.Start(t, dockerd.Options{DefaultRuntime: "runc", ExtraEnv: []string{"FGD_PROBE=w4"}})
	started := time.Now()
	image := d.ImportImage(t, "fgtest/busybox:w4", nil)
	t.Logf("daemon start %v, image import %v", started.Sub(start).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := d.RunDetached(ctx, image, "", nil, "sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.Status != "running" || st.Pid <= 0 {
		t.Fatalf("fresh container: %+v, want running with a pid", st)
	}
	if err := unix.Kill(st.Pid, 0); err != nil {
		t.Fatalf("init pid %d from inspect is not a live process: %v", st.Pid, err)
	}
	if ps, err := proc.NewFS("").Stat(context.Background(), st.Pid); err != nil || ps.Comm != "sleep" {
		t.Fatalf("init pid %d runs %q (%v), want sleep", st.Pid, ps.Comm, err)
	}
	procs, err := d.ContainerProcesses()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(procs, st.Pid) {
		t.Fatalf("ContainerProcesses() = %v, does not contain init %d", procs, st.Pid)
	}
	// ExtraEnv must reach the shim, which runs the runtime.
	shim := parentOf(t, st.Pid)
	environ, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(shim), "environ"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(environ), "\x00"), "FGD_PROBE=w4") {
		t.Fatalf("ExtraEnv did not reach the shim %d of init %d", shim, st.Pid)
	}

	if err := d.Kill(ctx, id); err != nil {
		t.Fatalf("docker kill of a healthy container: %v", err)
	}
	st, err = d.WaitExited(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "exited" || st.ExitCode != 137 {
		t.Fatalf("after docker kill: %+v, want exited 137", st)
	}
	if err := unix.Kill(st.Pid, 0); st.Pid != 0 && err == nil {
		t.Fatalf("inspect still names pid %d after exit", st.Pid)
	}
	if err := d.Rm(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	list, err := d.Client().ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("containers left after docker rm: %v", list)
	}
	if procs, err := d.ContainerProcesses(); err != nil || len(procs) != 0 {
		t.Fatalf("container processes left after docker rm: %v (%v)", procs, err)
	}
}

// TestTeardownLeavesNothing starts a daemon with a running container in a
// subtest and checks, after the subtest's cleanup, that no dockerd,
// containerd, shim or container process, mount or directory of it is left.
func TestTeardownLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	var d *dockerd.Daemon
	var initPid int
	t.Run("daemon", func(t *testing.T) {
		d = dockerd.Start(t, dockerd.Options{})
		image := d.ImportImage(t, "fgtest/busybox:teardown", nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		id, err := d.RunDetached(ctx, image, "runc", nil, "sleep", "1000")
		if err != nil {
			t.Fatal(err)
		}
		st, err := d.Inspect(ctx, id)
		if err != nil || !st.Running {
			t.Fatalf("container: %+v, %v", st, err)
		}
		initPid = st.Pid
	})
	if d == nil || initPid == 0 {
		t.Fatal("the daemon subtest did not get as far as a running container")
	}
	for _, pid := range []int{d.Pid, initPid} {
		if err := unix.Kill(pid, 0); err == nil {
			t.Errorf("pid %d still alive after teardown", pid)
		}
	}
	if _, err := os.Stat(d.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after teardown (%v)", d.Dir, err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), d.Dir) {
		t.Errorf("mounts below %s left after teardown:\n%s", d.Dir, mounts)
	}
	if leftovers := processesMentioning(t, d.Dir); len(leftovers) > 0 {
		t.Errorf("processes naming %s left after teardown: %v", d.Dir, leftovers)
	}
}

// parentOf reads pid's parent from /proc/PID/stat.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	st, err := proc.NewFS("").Stat(context.Background(), pid)
	if err != nil {
		t.Fatal(err)
	}
	return st.PPID
}

// processesMentioning lists the dockerd, containerd and shim processes
// whose command line names dir. Other processes' command lines are not
// read: that could block on a task wedged by another test.
func processesMentioning(t *testing.T, dir string) []string {
	t.Helper()
	p := proc.NewFS("")
	pids, err := p.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, pid := range pids {
		st, err := p.Stat(context.Background(), pid)
		if err != nil || !strings.HasPrefix(st.Comm, "dockerd") && !strings.HasPrefix(st.Comm, "containerd") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p.Root(), strconv.Itoa(pid), "cmdline"))
		if err == nil && strings.Contains(string(b), dir+"/") {
			out = append(out, strconv.Itoa(pid)+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// fatalTB records the first Fatal of the code under test instead of
// failing the test, and runs the cleanups it registers on demand.
type fatalTB struct {
	*testing.T
	fatal    string
	cleanups []func()
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fatalTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (f *fatalTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fatalTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// TestStartFailureShowsLog gives dockerd a configuration it refuses (a
// default runtime that does not exist): Start must fail with the reason
// from the daemon's own log, and leave nothing behind.
func TestStartFailureShowsLog(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "dockerd")
	ftb := &fatalTB{T: t}
	done := make(chan *dockerd.Daemon)
	go func() {
		var d *dockerd.Daemon
		defer func() { done <- d }()
		d = dockerd.Start(ftb, dockerd.Options{DefaultRuntime: "no-such-runtime"})
	}()
	d := <-done
	var dir string
	if d != nil {
		dir = d.Dir
	}
	ftb.runCleanups()
	if d != nil {
		t.Fatalf("Start with an unknown default runtime returned a daemon at %s", dir)
	}
	if ftb.fatal == "" {
		t.Fatal("Start neither returned a daemon nor failed")
	}
	if !strings.Contains(ftb.fatal, "dockerd log") || !strings.Contains(ftb.fatal, "no-such-runtime") {
		t.Fatalf("Start's failure does not quote the daemon's log about the runtime:\n%s", ftb.fatal)
	}
	t.Logf("Start failed as it should:\n%s", ftb.fatal)
	conf := regexp.MustCompile(`(/\S+)/daemon\.json`).FindStringSubmatch(ftb.fatal)
	if conf == nil {
		t.Fatalf("the failure names no daemon.json:\n%s", ftb.fatal)
	}
	if _, err := os.Stat(conf[1]); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the failed start (%v)", conf[1], err)
	}
}
