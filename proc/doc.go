// Package proc reads, as typed values, the /proc files that fuseguard needs
// to diagnose a stuck exit: stat, status, stack, wchan, syscall, fdinfo,
// task lists, namespace links, cgroup and mountinfo.
//
// Every reader takes a pid or tid and reads below the FS's root (normally
// /proc), so tests can point it at captured files. Each file format also has
// a pure Parse function, fuzzed and table-tested against captures from real
// kernels. Nothing here ever touches a path on a FUSE mount.
//
// # Reads that can block
//
// Some /proc files sleep on a lock of the task they describe. A task that
// execs while it holds a close-on-exec file on a FUSE mount flushes the file
// inside execve with its exec_update_lock (and cred_guard_mutex) held; if
// the FLUSH is never answered it holds them until the connection is
// aborted, and every reader of those files sleeps behind it, in a sleep
// that only SIGKILL ends — Go cannot interrupt a read(2) on procfs.
// Verified on Linux 6.18 against such a task (the W6 scenario of
// test/fixture): stack and syscall (lock_trace), stat (do_task_stat),
// wchan, io, personality, environ, maps, and following the ns/*, exe, cwd,
// root and fd/* links all sleep; status, cmdline, limits, cgroup,
// mountinfo and fdinfo/* answer. cmdline, environ and maps also take the
// task's mmap lock, which a task stuck in a FUSE page fault can hold.
//
// So Stack, Syscall, Stat, Wchan and NamespaceInode take a context and are
// bounded by it (DefaultReadTimeout when it has no deadline): the read runs
// in a goroutine that the caller abandons at its deadline, with
// ErrReadTimeout. A goroutine blocked in read(2) keeps an OS thread to
// itself until the task lets go (the runtime hands its P to another
// thread), so an abandoned read costs one sleeping thread; MaxBlockedReads
// caps them per process (ErrTooManyBlockedReads once reached), and a task
// with a read still abandoned fails at once, so each stuck task costs one
// deadline, not one per file. BlockedReads reports them. Status,
// Descendants (by status's PPid), Tasks, Cgroup, MountInfo and FDInfo read
// directly.
//
// Measured on the 2-core CI machine (BenchmarkBoundedRead, /proc/self/stat,
// medians of pairs in one run): direct 10.6 µs, bounded 17.9 µs, ratio 1.7
// — a few microseconds per read for a diagnosis that reads a handful of
// files per stuck task. A helper process killed at the deadline would also
// bound the read, but costs a fork and exec (milliseconds) per read or per
// diagnosis and a process to reap; the goroutine costs nothing more until
// a read actually blocks.
package proc
