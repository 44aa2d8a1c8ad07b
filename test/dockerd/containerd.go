package dockerd

import (
	"fmt"

	"github.com/fuseguard/fuseguard/proc"
)

// Containerd returns the pid of the daemon's managed containerd, the
// ancestor of every shim and so of every runtime and hook process: the
// process to trace to see them all.
func (d *Daemon) Containerd() (int, error) {
	p := proc.NewFS("")
	pt, err := readProcTable(p)
	if err != nil {
		return 0, err
	}
	pids := d.containerds(p, pt)
	if len(pids) != 1 {
		return 0, fmt.Errorf("dockerd %d: %d managed containerd processes (%v), want 1", d.Pid, len(pids), pids)
	}
	return pids[0], nil
}
