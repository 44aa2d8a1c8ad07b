// Package fusefixture is the fusefixture command: the pieces of a wedged
// container made of real kernel objects — a wedgefs FUSE daemon, tasks that
// hold or read its files, and a minimal init for a new PID and mount
// namespace. test/cmd/fusefixture runs it for the tests (a static binary
// that also runs in a busybox image), and the demo command (cmd/fuseguard-demo) runs it by
// re-executing itself.
//
//	serve -mode M -mount DIR [-name N] [-cached] [-self-read] [-hold] [-spawn-ns] [-ready FILE] [-- cmd args…]
//	init [-private=true] [-n N] [-ready FILE] -- cmd args…
//	hold [-ready FILE] FILE
//	read FILE
//	stat PATH
//	exec-hold [-go GATE] FILE
//	mmap-read SHARED_FILE OWN_FILE
//
// Progress is reported as lines on stdout, one write each (atomic on a
// pipe shared by several processes):
//
//	fusefixture: EVENT key=value …
//
// with EVENT one of mounted (conn, dir, mode), held (path, fd), spawned
// (by, pid), exec (pid), mapped (path, fd), reading (path, fd),
// blocked (op), reaped (by, pid, status), read (n,
// data in hex), stat, and ready (role) once the process is armed. Pids are as seen in the
// emitter's PID namespace. -ready FILE also appends "ready\n" to FILE.
// $FUSEFIXTURE_COMM, when set, is the process name (comm) of every
// fusefixture process.
package fusefixture

import (
	"fmt"
	"os"
)

// EventPrefix starts every progress line.
const EventPrefix = eventPrefix

// Main runs one subcommand (args[0]) and returns the exit code.
func Main(args []string) int {
	if len(args) < 1 {
		return usage()
	}
	if name := os.Getenv(EnvComm); name != "" {
		if err := setComm(name); err != nil {
			fmt.Fprintf(os.Stderr, "fusefixture: %v\n", err)
			return 1
		}
	}
	var err error
	rest := args[1:]
	switch args[0] {
	case "serve":
		err = serve(rest)
	case "init":
		err = initCmd(rest)
	case "hold":
		err = hold(rest)
	case "read":
		err = read(rest)
	case "stat":
		err = stat(rest)
	case "exec-hold":
		err = execHold(rest)
	case "mmap-read":
		err = mmapRead(rest)
	default:
		return usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fusefixture %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage() int {
	fmt.Fprintln(os.Stderr, "usage: fusefixture serve|init|hold|read|stat|exec-hold|mmap-read [flags] [args]")
	return 2
}
