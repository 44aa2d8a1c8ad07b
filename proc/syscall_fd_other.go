//go:build !linux

package proc

// fdArg knows no syscall numbers off Linux.
func fdArg(int) (int, bool) { return 0, false }
