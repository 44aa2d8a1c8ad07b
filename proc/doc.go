// Package proc reads, as typed values, the /proc files that fuseguard needs
// to diagnose a stuck exit: stat, status, stack, wchan, syscall, fdinfo,
// task lists, namespace links, cgroup and mountinfo.
//
// Every reader takes a pid or tid and reads below the FS's root (normally
// /proc), so tests can point it at captured files. Each file format also has
// a pure Parse function, fuzzed and table-tested against captures from real
// kernels. Nothing here ever touches a path on a FUSE mount.
package proc
