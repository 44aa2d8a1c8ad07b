package proc

import "golang.org/x/sys/unix"

// archFDArg0 covers the fd-first syscalls whose names differ between
// architectures.
func archFDArg0(nr int) bool {
	return nr == unix.SYS_ARM_SYNC_FILE_RANGE || nr == unix.SYS_ARM_FADVISE64_64
}
