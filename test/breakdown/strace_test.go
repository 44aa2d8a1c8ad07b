package breakdown

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The wrapper exec'd runc from a non-leader thread (Go's exec may run on
// any thread): strace shows the execve unfinished on that thread, then
// "superseded" and resumed under the leader's id.
func TestParseWrapperExecFromThread(t *testing.T) {
	f, err := os.Open("testdata/wrapper-version.strace")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	procs, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 {
		t.Fatalf("%d processes, want 1 (threads folded into their process): %+v", len(procs), procs)
	}
	p := procs[0]
	if len(p.Execs) != 2 || p.Execs[0].Path != "/tmp/fuseguard-runtime" || p.Execs[1].Path != "/usr/sbin/runc" {
		t.Fatalf("execs %+v, want fuseguard-runtime then runc", p.Execs)
	}
	if p.Exit.IsZero() || !p.Exit.After(p.Execs[1].At) || !p.Execs[1].At.After(p.Execs[0].At) {
		t.Fatalf("times out of order: %+v exit %v", p.Execs, p.Exit)
	}
	rows := Rows(procs, p.Execs[0].At, p.Exit)
	if len(rows) != 2 || rows[0].What != "fuseguard-runtime --version" || !rows[0].Fuseguard ||
		rows[1].What != "runc --version" || rows[1].Fuseguard {
		t.Fatalf("rows %+v", rows)
	}
	if rows[0].Wall+rows[1].Wall != p.Exit.Sub(p.Execs[0].At) {
		t.Fatalf("walls %v + %v do not add up to the process's %v", rows[0].Wall, rows[1].Wall, p.Exit.Sub(p.Execs[0].At))
	}
}

func TestParseSyncsAndHooks(t *testing.T) {
	const log = `100 1700000000.000000 execve("/usr/sbin/runc", ["runc", "--root", "/r", "create", "--bundle", "/b", "id"], 0x1 /* 3 vars */) = 0 <0.000100>
100 1700000000.001000 clone(child_stack=0x1, flags=CLONE_VM|CLONE_THREAD, tls=0x2) = 101 <0.000010>
100 1700000000.002000 clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD <unfinished ...>
100 1700000000.002500 <... clone resumed>) = 102 <0.000500>
102 1700000000.003000 execve("/usr/bin/fuseguard", ["/usr/bin/fuseguard", "hook", "createRuntime"], 0x1 /* 3 vars */) = 0 <0.000100>
102 1700000000.004000 fsync(3)          = 0 <0.001500>
102 1700000000.006000 fdatasync(4)      = 0 <0.000500>
101 1700000000.007000 fsync(5)          = 0 <0.000250>
103 1700000000.007000 execve("/nope", ["/nope"], 0x1 /* 3 vars */) = -1 ENOENT (No such file or directory) <0.000010>
102 1700000000.010000 +++ exited with 0 +++
101 1700000000.019000 +++ exited with 0 +++
100 1700000000.020000 +++ exited with 0 +++
`
	procs, err := Parse(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 {
		t.Fatalf("%d processes, want runc and its hook: %+v", len(procs), procs)
	}
	runc, hook := procs[0], procs[1]
	if runc.PID != 100 || len(runc.Syncs) != 1 || runc.Syncs[0].Duration != 250*time.Microsecond {
		t.Errorf("runc: %+v, want its thread's fsync counted", runc)
	}
	if hook.PID != 102 || len(hook.Syncs) != 2 || hook.Syncs[0].Duration+hook.Syncs[1].Duration != 2*time.Millisecond {
		t.Errorf("hook: %+v, want 2 syncs, 2 ms", hook)
	}
	rows := Rows(procs, time.Unix(1700000000, 0), time.Unix(1700000001, 0))
	want := []struct {
		what string
		fg   bool
		wall time.Duration
	}{{"runc create", false, 20 * time.Millisecond}, {"fuseguard hook createRuntime", true, 7 * time.Millisecond}}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i, w := range want {
		if rows[i].What != w.what || rows[i].Fuseguard != w.fg || rows[i].Wall != w.wall {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], w)
		}
	}
	if s := Sum(rows); s.FuseguardProcs != 1 || s.FuseguardWall != 7*time.Millisecond || s.Syncs != 3 {
		t.Errorf("sum %+v", s)
	}
}
