package proc

import (
	"fmt"
	"os"
	"slices"
	"strconv"
)

// Tasks lists the thread ids of a thread group (/proc/PID/task), ascending.
func (fs FS) Tasks(pid int) ([]int, error) {
	p := fs.path(pid, "task")
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, fs.classify(pid, p, "list", err)
	}
	return numericNames(ents), nil
}

// PIDs lists every thread-group id in the FS, ascending.
func (fs FS) PIDs() ([]int, error) {
	ents, err := os.ReadDir(fs.Root())
	if err != nil {
		return nil, fmt.Errorf("proc: list %s: %w", fs.Root(), err)
	}
	return numericNames(ents), nil
}

// numericNames returns the entries named by a decimal id (skipping "self",
// "sys", …) as sorted ints.
func numericNames(ents []os.DirEntry) []int {
	ids := make([]int, 0, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 && e.Name()[0] != '+' {
			ids = append(ids, n)
		}
	}
	slices.Sort(ids)
	return ids
}
