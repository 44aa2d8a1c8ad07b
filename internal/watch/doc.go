// Package watch is the node watcher: one process per node that tracks every
// container record in the state directory, keeps each record's FUSE
// connections current while the container runs, and rescues a container
// whose init is stuck exiting even though nobody killed it (its main
// process exited on its own, or was OOM-killed, while a task of the
// container waits on FUSE).
//
// One event loop waits (epoll) on every file descriptor the watcher
// holds: the state directory's inotify descriptor, a pidfd per tracked init
// (readable once init has exited: the record is forgotten),
// /proc/PID/mountinfo per tracked init (POLLPRI on every mount-table
// change: the record is refreshed), the kernel's taskstats exit
// notifications, and an eventfd that wakes the loop for shutdown and for
// rescue results. A wake-up costs what is ready, not what is held.
//
// The kernel says which init begins to exit: taskstats sends a message for
// every task entering do_exit, right after PF_EXITING is set and before the
// exit can block (in exit_files' FUSE flush, or in zap_pid_ns_processes).
// The loop reads only that init's /proc/PID/stat, and every init's only
// every SafetyCheckInterval (30 s) and at once when notifications were lost
// (ENOBUFS). Without taskstats (no CAP_NET_ADMIN, no CONFIG_TASKSTATS, not
// in the initial namespaces, or ExitEvents "off") it polls as before: a
// cheap check of each init's PF_EXITING flag (pread of a held
// /proc/PID/stat descriptor) every CheckInterval; the log, watch.state,
// the metrics and `fuseguard doctor` say which. Nothing else is re-read on
// a timer but a slow safety rescan of the records. A mount table is read at
// most once per MountReadInterval: a change made meanwhile is read at the
// next slot, so a container mounting in a loop cannot keep the loop busy.
//
// The loop never reads what can wait on a container (stacks, syscall,
// the diagnosis): rescues run beside it, at most one per container and
// MaxRescues in all, each under RescueTimeout; one past its deadline is
// abandoned so that the others go on. A failed rescue is retried after a
// backoff that doubles up to MaxRetryInterval. Records, connections per
// record and mount-table reads are capped; what the watcher knows beyond
// the records is published in StateName for `fuseguard status`.
//
// A stuck exit is init with PF_EXITING for longer than Grace. The rescue is
// killer.Kill with VerifyOnly: the diagnosis decides what to abort under the
// policy (owned connections a stuck task waits on, never shared ones), so
// an exit that is merely slow, with nothing waiting on FUSE, is never
// touched.
package watch
