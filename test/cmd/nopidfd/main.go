// Command nopidfd runs a command on a kernel without pidfd_open, as Linux
// before 5.3 was: `nopidfd CMD ARGS…` sets no_new_privs, installs a
// seccomp filter under which pidfd_open fails with ENOSYS (every other
// system call is allowed) and execs CMD. The filter is inherited by CMD's
// children. Tests use it to check what fuseguard does where the kernel is
// older than a feature it needs.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nopidfd CMD [ARGS…]")
		os.Exit(2)
	}
	bin, err := exec.LookPath(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "nopidfd:", err)
		os.Exit(127)
	}
	// The filter and no_new_privs are per thread until exec: keep this
	// goroutine on the thread that execs.
	runtime.LockOSThread()
	if err := denyPidfdOpen(); err != nil {
		fmt.Fprintln(os.Stderr, "nopidfd:", err)
		os.Exit(1)
	}
	err = unix.Exec(bin, os.Args[1:], os.Environ())
	fmt.Fprintln(os.Stderr, "nopidfd: exec:", err)
	os.Exit(126)
}

// denyPidfdOpen installs, on the calling thread, a seccomp filter that
// answers pidfd_open with ENOSYS.
func denyPidfdOpen() error {
	const (
		retAllow = 0x7fff0000 // SECCOMP_RET_ALLOW
		retErrno = 0x00050000 // SECCOMP_RET_ERRNO
	)
	prog, err := bpf.Assemble([]bpf.Instruction{
		// struct seccomp_data: nr is the first 32-bit word.
		bpf.LoadAbsolute{Off: 0, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SYS_PIDFD_OPEN, SkipFalse: 1},
		bpf.RetConstant{Val: retErrno | uint32(unix.ENOSYS)},
		bpf.RetConstant{Val: retAllow},
	})
	if err != nil {
		return fmt.Errorf("assemble filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("seccomp filter: %w", err)
	}
	return nil
}
