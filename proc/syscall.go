package proc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Syscall is /proc/TID/syscall.
type Syscall struct {
	Running bool      // "running": the task is on a CPU, no syscall known; Number is -1
	Number  int       // -1 when blocked outside a syscall
	Args    [6]uint64 // valid when Number >= 0
	SP, PC  uint64
}

// Syscall reads /proc/TID/syscall. The read takes the task's
// exec_update_lock (lock_trace), so it is bounded by ctx: ErrReadTimeout.
func (fs FS) Syscall(ctx context.Context, tid int) (Syscall, error) {
	b, p, err := fs.readBounded(ctx, tid, false, "syscall")
	if err != nil {
		return Syscall{}, err
	}
	s, err := ParseSyscall(b)
	if err != nil {
		return Syscall{}, fmt.Errorf("proc: parse %s: %w", p, err)
	}
	return s, nil
}

// ParseSyscall parses the bytes of /proc/TID/syscall, one of
// "nr arg0 … arg5 sp pc", "-1 sp pc" and "running".
func ParseSyscall(b []byte) (Syscall, error) {
	f := strings.Fields(string(b))
	if len(f) == 1 && f[0] == "running" {
		return Syscall{Running: true, Number: -1}, nil
	}
	if len(f) == 0 {
		return Syscall{}, fmt.Errorf("syscall: empty")
	}
	nr, err := strconv.Atoi(f[0])
	if err != nil {
		return Syscall{}, fmt.Errorf("syscall: number: %w", err)
	}
	var s Syscall
	s.Number = nr
	var want int
	switch {
	case nr == -1:
		want = 3
	case nr >= 0:
		want = 9
	default:
		return Syscall{}, fmt.Errorf("syscall: number %d: negative but not -1", nr)
	}
	if len(f) != want {
		return Syscall{}, fmt.Errorf("syscall: %d fields for number %d, want %d", len(f), nr, want)
	}
	vals := make([]uint64, want-1)
	for i, v := range f[1:] {
		if vals[i], err = parseHex(v); err != nil {
			return Syscall{}, fmt.Errorf("syscall: field %d: %w", i+2, err)
		}
	}
	if nr >= 0 {
		copy(s.Args[:], vals[:6])
	}
	s.SP, s.PC = vals[len(vals)-2], vals[len(vals)-1]
	return s, nil
}

// FD returns the file descriptor the syscall operates on, for the syscalls
// whose argument names one fd that can sit on a FUSE file (read, pread64,
// readv, write, …, fsync, fdatasync, getdents64, ioctl, fstat, lseek, ftruncate,
// fallocate, flock, fcntl, copy_file_range, splice, sendfile's in_fd …).
func (s Syscall) FD() (int, bool) {
	if s.Running || s.Number < 0 {
		return 0, false
	}
	i, ok := fdArg(s.Number)
	if !ok {
		return 0, false
	}
	// The kernel takes these fds as (unsigned) int: only the low 32 bits count.
	fd := int32(uint32(s.Args[i]))
	if fd < 0 {
		return 0, false
	}
	return int(fd), true
}
