package killer

import (
	"errors"
	"fmt"

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
	if n := len(st.NSpid); n < 2 || st.NSpid[n-1] != 1 {
		return fmt.Errorf("pid %d (NSpid %v): %w", pid, st.NSpid, ErrNotNamespaceInit)
	}
	return nil
}
