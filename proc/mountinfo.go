package proc

import (
	"bytes"
	"fmt"

	"github.com/moby/sys/mountinfo"
)

// MountInfo reads /proc/PID/mountinfo. It is ErrUnreadable for a task whose
// mount namespace is already gone (EINVAL once init is in do_exit).
func (fs FS) MountInfo(pid int) ([]*mountinfo.Info, error) {
	b, p, err := fs.read(pid, "mountinfo")
	if err != nil {
		return nil, err
	}
	mounts, err := ParseMountInfo(b)
	if err != nil {
		return nil, fmt.Errorf("proc: parse %s: %w", p, err)
	}
	return mounts, nil
}

// ParseMountInfo parses the bytes of a mountinfo file; it needs at least
// one mount.
func ParseMountInfo(b []byte) ([]*mountinfo.Info, error) {
	mounts, err := mountinfo.GetMountsFromReader(bytes.NewReader(b), nil)
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	if len(mounts) == 0 {
		return nil, fmt.Errorf("mountinfo: no mounts")
	}
	return mounts, nil
}
