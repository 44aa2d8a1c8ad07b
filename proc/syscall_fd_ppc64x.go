//go:build ppc64 || ppc64le

package proc

import "golang.org/x/sys/unix"

// archFDArg0 covers the fd-first syscalls whose names differ between
// architectures.
func archFDArg0(nr int) bool {
	return nr == unix.SYS_SYNC_FILE_RANGE2 || nr == unix.SYS_FADVISE64
}
