package dockerd

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/proc"
)

// Tree holds every process of a container through pidfds, taken while it
// runs: init and all its descendants. A held process is known exited by
// its pidfd, so a pid reused meanwhile is never mistaken for it.
type Tree struct {
	PIDs []int
	fds  []int
}

// HoldTree holds init and its descendants until the test's end; it fails
// the test unless there are at least two (init and its FUSE daemon).
func HoldTree(t testing.TB, init int) *Tree {
	t.Helper()
	pids, err := proc.NewFS("").Descendants(init)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Tree{}
	t.Cleanup(func() {
		for _, fd := range tr.fds {
			unix.Close(fd)
		}
	})
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("pidfd_open %d: %v", pid, err)
		}
		tr.PIDs = append(tr.PIDs, pid)
		tr.fds = append(tr.fds, fd)
	}
	if len(tr.PIDs) < 2 {
		t.Fatalf("container of init %d has processes %v; want init and its FUSE daemon", init, tr.PIDs)
	}
	return tr
}

// Alive returns the held processes that have not exited (a pidfd polls
// readable once its process has exited).
func (tr *Tree) Alive() []int {
	var out []int
	for i, fd := range tr.fds {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err != nil || n == 0 {
			out = append(out, tr.PIDs[i])
		}
	}
	return out
}
