package dockerd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fuseguard/fuseguard/proc"
)

// procTable is a snapshot of the host's processes: the command name of
// each pid, read from /proc/PID/stat only (which never waits on a stuck
// task's locks, unlike cmdline or environ).
type procTable map[int]string

func readProcTable(p proc.FS) (procTable, error) {
	pids, err := p.PIDs()
	if err != nil {
		return nil, err
	}
	pt := make(procTable, len(pids))
	for _, pid := range pids {
		st, err := p.Stat(context.Background(), pid)
		if err != nil {
			continue // exited meanwhile
		}
		pt[pid] = st.Comm
	}
	return pt, nil
}

// shims returns the containerd shims that serve our containerd: their
// command line names its socket. Only processes called containerd-shim*
// have their cmdline read, so a task stuck with its mm locked is never
// touched.
func (d *Daemon) shims(p proc.FS, pt procTable) []int {
	return shimsOf(p, pt, d.containerdSocket())
}

// ShimsOf returns the containerd shims serving the containerd whose socket
// is sock (their command line names it).
func ShimsOf(sock string) ([]int, error) {
	p := proc.NewFS("")
	pt, err := readProcTable(p)
	if err != nil {
		return nil, err
	}
	return shimsOf(p, pt, sock), nil
}

func shimsOf(p proc.FS, pt procTable, sock string) []int {
	var out []int
	for pid, comm := range pt {
		if !strings.HasPrefix(comm, "containerd-shim") {
			continue
		}
		if cmdlineHas(p, pid, sock) {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// containerds returns our managed containerd: a process called containerd
// whose command line names our exec-root.
func (d *Daemon) containerds(p proc.FS, pt procTable) []int {
	var out []int
	for pid, comm := range pt {
		if comm == "containerd" && cmdlineHas(p, pid, d.ExecRoot+"/") {
			out = append(out, pid)
		}
	}
	return out
}

func (d *Daemon) containerdSocket() string {
	return d.ExecRoot + "/containerd/containerd.sock"
}

// cmdlineHas reports whether an argument of pid's command line contains
// s. The arguments are NUL-separated, so s (which has no NUL) matches the
// raw bytes only within one argument.
func cmdlineHas(p proc.FS, pid int, s string) bool {
	b, err := os.ReadFile(filepath.Join(p.Root(), strconv.Itoa(pid), "cmdline"))
	return err == nil && bytes.Contains(b, []byte(s))
}

// ContainerProcesses returns the pids of every process that runs in one
// of this daemon's containers: the descendants of its containerd shims.
func (d *Daemon) ContainerProcesses() ([]int, error) {
	p := proc.NewFS("")
	pt, err := readProcTable(p)
	if err != nil {
		return nil, err
	}
	shims := d.shims(p, pt)
	pids, err := p.Descendants(shims...)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(pids, func(pid int) bool { return slices.Contains(shims, pid) }), nil
}
