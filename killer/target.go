package killer

import (
	"errors"
	"fmt"
	"os"

	"github.com/fuseguard/fuseguard/proc"
)

// ErrNotNamespaceInit: the pid is not the init of a PID namespace other than
// the host's, so it is not a container's init.
var ErrNotNamespaceInit = errors.New("not the init of a container's PID namespace")

// CheckNamespaceInit refuses a pid that is not pid 1 of a nested PID
// namespace (NSpid in /proc/PID/status ends in 1 and has more than one level).
func CheckNamespaceInit(p proc.FS, pid int) error {
	st, err := p.Status(pid)
	if err != nil {
		if errors.Is(err, proc.ErrNoProcess) {
			return fmt.Errorf("pid %d: %w", pid, ErrNoTarget)
		}
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	return namespaceInit(pid, st)
}

// namespaceInit is CheckNamespaceInit on pid's status, already read.
func namespaceInit(pid int, st proc.Status) error {
	if n := len(st.NSpid); n < 2 || st.NSpid[n-1] != 1 {
		return fmt.Errorf("pid %d (NSpid %v): %w", pid, st.NSpid, ErrNotNamespaceInit)
	}
	return nil
}

// containerCgroup reports whether cgroup cg (as /proc/PID/cgroup shows it)
// can name one container: not the root, where every unconfined process is,
// and not fuseguard's own (when that can be read).
func containerCgroup(p proc.FS, cg string) bool {
	if cg == "" || cg == "/" {
		return false
	}
	own, err := p.Cgroup(os.Getpid())
	return err != nil || cg != own
}
