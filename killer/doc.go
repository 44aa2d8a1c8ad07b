// Package killer kills a container's init and makes sure it dies: SIGKILL
// through a pidfd, a bounded wait for the exit, and, when init is stuck
// (in zap_pid_ns_processes, waiting for a task asleep inside FUSE), a
// diagnosis and an abort of exactly the container's stuck FUSE connections,
// then a second bounded wait. No step ever waits without a deadline.
//
// The design it implements (scenarios W1–W7, the rules, the threat model)
// is docs/design.md in the repository; docs/architecture.md shows where the
// package sits.
package killer
