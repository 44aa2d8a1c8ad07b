package killer

import (
	"fmt"

	"github.com/fuseguard/fuseguard/proc"
)

// classify names what a task in D waits on, from its kernel stack alone.
func classify(st proc.Stack) BlockerKind {
	switch {
	case st.Has("request_wait_answer") && st.Has("fuse_flush") && st.Has("do_exit"):
		return BlockerFUSEFlush
	case st.Has("request_wait_answer"):
		return BlockerFUSERequest
	default:
		return BlockerOther
	}
}

// InZap reports whether a stack is init tearing down its PID namespace:
// waiting in zap_pid_ns_processes for every other task of it to die.
func InZap(st proc.Stack) bool { return st.Has(proc.FrameZapPidNS) }

// pageFaultFrames are kernel functions of page-fault handling. A task whose
// FUSE wait is under one of them waits for a page of a *mapped* file, not
// for the file of the fd its syscall names: read(fd_of_mount_A, buf) with
// buf mapped from a file on mount B faults on copy-out (asm_exc_page_fault)
// or while pinning the pages for direct I/O (get_user_pages →
// handle_mm_fault), and the request it waits on is B's. (fuse_read_folio
// alone is no sign: a buffered read of the fd's own file reaches it too.)
// On Linux 6.18 do_user_addr_fault is inlined away: the copy-out stack
// shows asm_exc_page_fault and exc_page_fault, the pinning one neither,
// and both show handle_mm_fault (captures in proc/testdata, test/fixture
// W7). Debian's 5.10, 6.1 and 6.12 (test/kernels, row W7-mmap-fault)
// show the same frames, with do_user_addr_fault between handle_mm_fault
// and exc_page_fault on copy-out, and __get_user_pages under
// handle_mm_fault when pinning.
var pageFaultFrames = []string{
	"asm_exc_page_fault", "exc_page_fault", "do_user_addr_fault",
	"handle_mm_fault", "__handle_mm_fault", "filemap_fault",
}

// untrustedFD says why the fd of a stuck task's blocked syscall does not
// tell which connection it waits on; "" when it does.
func untrustedFD(st proc.Stack) string {
	for _, fn := range pageFaultFrames {
		if st.Has(fn) {
			return fmt.Sprintf("the wait is under a page fault (%s): it may be for a page of another mapped FUSE file", fn)
		}
	}
	return ""
}
