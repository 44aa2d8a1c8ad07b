package dockerd

import (
	"slices"
	"strings"

	"github.com/prometheus/procfs"
)

// procTable is a snapshot of the host's processes: parent and command
// name of each pid, read from /proc/PID/stat only (which never waits on a
// stuck task's locks, unlike cmdline or environ).
type procTable struct {
	ppid map[int]int
	comm map[int]string
}

func readProcTable() (procTable, error) {
	pt := procTable{ppid: map[int]int{}, comm: map[int]string{}}
	procs, err := procfs.AllProcs()
	if err != nil {
		return pt, err
	}
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue // exited meanwhile
		}
		pt.ppid[p.PID] = st.PPID
		pt.comm[p.PID] = st.Comm
	}
	return pt, nil
}

// descendants returns roots and every process below them.
func (pt procTable) descendants(roots ...int) []int {
	children := map[int][]int{}
	for pid, ppid := range pt.ppid {
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	seen := map[int]bool{}
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		if _, ok := pt.ppid[pid]; ok {
			out = append(out, pid)
		}
		queue = append(queue, children[pid]...)
	}
	return out
}

// shims returns the containerd shims that serve our containerd: their
// command line names its socket. Only processes called containerd-shim*
// have their cmdline read, so a task stuck with its mm locked is never
// touched.
func (d *Daemon) shims(pt procTable) []int {
	sock := d.containerdSocket()
	var out []int
	for pid, comm := range pt.comm {
		if !strings.HasPrefix(comm, "containerd-shim") {
			continue
		}
		if cmdlineHas(pid, sock) {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// containerds returns our managed containerd: a process called containerd
// whose command line names our exec-root.
func (d *Daemon) containerds(pt procTable) []int {
	var out []int
	for pid, comm := range pt.comm {
		if comm == "containerd" && cmdlineHas(pid, d.ExecRoot+"/") {
			out = append(out, pid)
		}
	}
	return out
}

func (d *Daemon) containerdSocket() string {
	return d.ExecRoot + "/containerd/containerd.sock"
}

func cmdlineHas(pid int, s string) bool {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return false
	}
	args, err := p.CmdLine()
	if err != nil {
		return false
	}
	return slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, s) })
}

// ContainerProcesses returns the pids of every process that runs in one
// of this daemon's containers: the descendants of its containerd shims.
func (d *Daemon) ContainerProcesses() ([]int, error) {
	pt, err := readProcTable()
	if err != nil {
		return nil, err
	}
	var out []int
	for _, shim := range d.shims(pt) {
		for _, pid := range pt.descendants(shim) {
			if pid != shim {
				out = append(out, pid)
			}
		}
	}
	return out, nil
}
