package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/internal/wrapper"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// lingeringRuntime writes a runtime for the wrapper that runs the real runc
// with its arguments and then, for kill only, writes its pid to pidFile and
// stays (exec sleep): a runtime whose kill does not return, as runc does
// on a frozen cgroup.
func lingeringRuntime(t *testing.T, runc, pidFile string) string {
	t.Helper()
	sh := testenv.RequireBinary(t, "sh")
	sleep := testenv.RequireBinary(t, "sleep")
	script := filepath.Join(t.TempDir(), "runc-lingering")
	body := fmt.Sprintf("#!%s\n%s \"$@\"\ncase \" $* \" in *\" kill \"*) echo $$ > %s; exec %s 600;; esac\n", sh, runc, pidFile, sleep)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// process is one process, named by pid and start time so that a reused
// pid is not mistaken for it.
type process struct {
	pid   int
	start uint64
}

// waitChild waits for the lingering runtime's pid file and returns the
// process it names.
func waitChild(t *testing.T, pidFile string) process {
	t.Helper()
	s := strings.TrimSpace(waitFile(t, pidFile, "\n", 10*time.Second))
	pid, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("pid file %q: %v", s, err)
	}
	st, err := proc.NewFS("").Stat(context.Background(), pid)
	if err != nil {
		t.Fatalf("runtime child %d: %v", pid, err)
	}
	t.Cleanup(func() {
		if alive(process{pid, st.StartTime}) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return process{pid, st.StartTime}
}

// alive reports whether p still runs: its pid is in /proc with the same
// start time and is not a zombie.
func alive(p process) bool {
	st, err := proc.NewFS("").Stat(context.Background(), p.pid)
	return err == nil && st.StartTime == p.start && st.State != "Z"
}

// waitGone waits up to timeout for p to be gone and fails if it is not.
func waitGone(t *testing.T, p process, timeout time.Duration, why string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for alive(p) {
		if time.Now().After(deadline) {
			t.Fatalf("runtime child %d still alive %v after %s", p.pid, timeout, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startWrapper starts `fuseguard runtime … kill ID KILL` with runtime as
// the real runtime; wait returns its exit status, or fails the test after
// timeout.
func startWrapper(t *testing.T, b *runcBundle, runtime string, extra ...string) (cmd *exec.Cmd, wait func(timeout time.Duration) *os.ProcessState) {
	t.Helper()
	argv := append([]string{"runtime", "--fuseguard-runtime=" + runtime, "--fuseguard-state-dir", b.stateDir}, extra...)
	argv = append(argv, "--root", b.root, "kill", b.id, "KILL")
	cmd = exec.Command(fgcmd.Binary(t), argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return cmd, func(timeout time.Duration) *os.ProcessState {
		t.Helper()
		select {
		case <-done:
			if stderr.Len() > 0 {
				t.Logf("wrapper stderr: %s", stderr.String())
			}
			return cmd.ProcessState
		case <-time.After(timeout):
			t.Fatalf("wrapper did not exit within %v", timeout)
			return nil
		}
	}
}

// TestRuncWrapperLeavesNoProcess: the wrapper's kill runs the real runc as
// its child. A SIGTERM or SIGINT to the wrapper reaches the child and the
// wrapper exits with the child's status; a SIGKILL of the wrapper takes
// the child with it (parent death signal); a child that never returns is
// killed at the wrapper's deadline, which is KillBound. No case leaves the
// child behind. Each real runc is the child in turn.
func TestRuncWrapperLeavesNoProcess(t *testing.T) {
	testenv.ForEachRunc(t, testRuncWrapperLeavesNoProcess)
}

func testRuncWrapperLeavesNoProcess(t *testing.T, runc string) {
	b := newRuncBundle(t, runc, "/bin/sleep", "1000")
	out, err := os.Create(b.out)
	if err != nil {
		t.Fatal(err)
	}
	// The container's stdio is the runtime's: runc create hands it over.
	r := runWithOutput(t, out, b.runc, "--root", b.root, "create", "--bundle", b.dir, b.id)
	out.Close()
	if r.code != 0 {
		t.Fatalf("runc create: exit %d\n%s", r.code, mustRead(b.out))
	}
	if r := run(t, 20*time.Second, nil, nil, b.runc, "--root", b.root, "start", b.id); r.code != 0 {
		t.Fatalf("runc start: %d %s", r.code, r.stderr)
	}

	// The signals a caller stops the wrapper with: the shim's SIGTERM at
	// its deadline, an operator's ^C.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(unix.SignalName(sig)+" forwarded", func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			cmd, wait := startWrapper(t, b, lingeringRuntime(t, b.runc, pidFile))
			child := waitChild(t, pidFile)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			st := wait(10 * time.Second)
			if want := 128 + int(sig); st.ExitCode() != want {
				t.Errorf("wrapper exit %v, want the child's %d (killed by the forwarded %s)", st, want, unix.SignalName(sig))
			}
			if alive(child) {
				t.Errorf("runtime child %d alive after the wrapper exited", child.pid)
			}
			// runc's kill itself ran before the child lingered.
			if st, ok := b.state(t); ok && st.Status == "running" {
				t.Errorf("container still running after runc kill: %+v", st)
			}
		})
	}

	t.Run("wrapper SIGKILLed", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		cmd, wait := startWrapper(t, b, lingeringRuntime(t, b.runc, pidFile))
		child := waitChild(t, pidFile)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		wait(10 * time.Second)
		// The kernel sends the death signal as the wrapper exits.
		waitGone(t, child, 5*time.Second, "the wrapper was SIGKILLed")
	})

	t.Run("deadline", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		opts := []string{"--fuseguard-verify-timeout=100ms", "--fuseguard-recover-timeout=100ms"}
		bound := (&wrapper.Wrapper{VerifyTimeout: 100 * time.Millisecond, RecoverTimeout: 100 * time.Millisecond}).KillBound()
		begin := time.Now()
		_, wait := startWrapper(t, b, lingeringRuntime(t, b.runc, pidFile), opts...)
		child := waitChild(t, pidFile)
		st := wait(bound + 5*time.Second)
		took := time.Since(begin)
		t.Logf("wrapper returned %v after %v (bound %v)", st, took.Round(time.Millisecond), bound)
		if took > bound {
			t.Errorf("wrapper kill took %v, more than its bound %v", took, bound)
		}
		if want := 128 + int(syscall.SIGKILL); st.ExitCode() != want {
			t.Errorf("wrapper exit %v, want %d: the lingering runtime killed at the deadline", st, want)
		}
		if alive(child) {
			t.Errorf("runtime child %d alive after the wrapper's deadline", child.pid)
		}
		lines := fgcmd.LogLines(filepath.Join(b.stateDir, "runtime.log"), b.id)
		if !containsAny(lines, "runtime did not return in time") {
			t.Errorf("runtime.log does not say the runtime was killed:\n%s", strings.Join(lines, "\n"))
		}
	})
}

func containsAny(lines []string, substr string) bool {
	for _, l := range lines {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}
