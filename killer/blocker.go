package killer

import "github.com/fuseguard/fuseguard/proc"

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

// inZap reports whether a stack is init tearing down its PID namespace.
func inZap(st proc.Stack) bool { return st.Has("zap_pid_ns_processes") }
