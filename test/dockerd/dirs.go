package dockerd

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// MountsBelow returns the mount points below dir in the caller's mount
// table, deepest first.
func MountsBelow(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// UnmountBelow lazily unmounts everything mounted below dir, deepest
// first. Lazy, because a mount may still be busy.
func UnmountBelow(dir string) error {
	mounts, err := MountsBelow(dir)
	if err != nil {
		return fmt.Errorf("reading mounts: %w", err)
	}
	var errs []error
	for _, m := range mounts {
		err := unix.Unmount(m, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveDir removes dir within timeout; a removal that hangs is abandoned
// and reported.
func RemoveDir(dir string, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- os.RemoveAll(dir) }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("removing %s did not finish within %v", dir, timeout)
	}
}
