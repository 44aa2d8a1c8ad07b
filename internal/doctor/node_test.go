package doctor

import (
	"context"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestProbeBlockedThread reads a real blocked thread of this process: its
// syscall must be read(2), and the thread must be released after.
func TestProbeBlockedThread(t *testing.T) {
	testenv.RequireRoot(t)
	// Where the kernel does not let us read even our own thread's stack,
	// the check must fail.
	if _, err := os.ReadFile("/proc/thread-self/stack"); err != nil {
		if c := CheckProcReadable(context.Background()); c.Status != Fail {
			t.Errorf("/proc/thread-self/stack: %v, but the check says %+v", err, c)
		}
		return
	}
	for range 3 {
		stack, sys, err := probeBlockedThread(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sys.Number != unix.SYS_READ {
			t.Errorf("syscall %d, want read (%d)", sys.Number, unix.SYS_READ)
		}
		if len(stack) == 0 {
			t.Error("empty stack")
		}
	}
	if c := CheckProcReadable(context.Background()); c.Status != OK {
		t.Errorf("%+v", c)
	}
}
