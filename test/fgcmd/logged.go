package fgcmd

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loggedStopTimeout bounds the wait, at cleanup, for a process started by
// StartLogged to exit after SIGTERM before it is SIGKILLed.
const loggedStopTimeout = 10 * time.Second

// Line is one line a process wrote, and when it was read.
type Line struct {
	Text string
	At   time.Time
}

// StartLogged runs bin with args as the test's child, its stderr (where a
// fuseguard command logs) line by line on the returned channel, which is
// closed when the process exits. The kernel kills it should the test
// process die (parent death signal); at cleanup it gets SIGTERM, its
// output is drained, and it is SIGKILLed after 10 s and reaped.
func StartLogged(t testing.TB, bin string, args ...string) (*exec.Cmd, <-chan Line) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan Line, 4096)
	drained := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- Line{sc.Text(), time.Now()}
		}
		close(lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		go func() {
			for range lines {
			}
			close(drained)
		}()
		select {
		case <-drained:
		case <-time.After(loggedStopTimeout):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
	})
	return cmd, lines
}

// WaitLine returns the first line on lines that contains substr, failing t
// when none comes within d or the process exits first.
func WaitLine(t testing.TB, lines <-chan Line, substr string, d time.Duration) Line {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the process exited before %q", substr)
			}
			if strings.Contains(l.Text, substr) {
				return l
			}
		case <-deadline:
			t.Fatalf("no %q from the process within %s", substr, d)
		}
	}
}
