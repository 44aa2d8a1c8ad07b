package proc

import (
	"errors"
	"fmt"
)

// Descendants returns roots and every process below them, by the parent pid
// of /proc/PID/status: parents first, each pid once, siblings ascending.
// Status, unlike stat, never sleeps behind a task inside execve, so one
// such task anywhere on the host cannot stall the walk.
//
// The process table is one pass over PIDs, so the answer is a snapshot: a
// process that exits meanwhile, or whose status is unreadable, is left out
// together with the processes below it; so is a root that is not a process
// (a pid <= 0, a reaped pid, a thread id). Zombies still hold their pid and
// are included.
func (fs FS) Descendants(roots ...int) ([]int, error) {
	pids, err := fs.PIDs()
	if err != nil {
		return nil, err
	}
	children := make(map[int][]int, len(pids))
	live := make(map[int]bool, len(pids))
	for _, pid := range pids { // ascending, so every children list is too
		st, err := fs.Status(pid)
		if errors.Is(err, ErrNoProcess) || errors.Is(err, ErrUnreadable) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("proc: descendants of %v: %w", roots, err)
		}
		live[pid] = true
		children[st.PPid] = append(children[st.PPid], pid)
	}

	var out []int
	seen := make(map[int]bool)
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		// live also keeps out pid 0, the parent of init and kthreadd.
		if seen[pid] || !live[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out, nil
}
