// Command fusefixture builds the wedged containers of fuseguard's tests and
// demo out of real kernel objects: a wedgefs FUSE daemon, tasks that hold or
// read its files, and a minimal init for a new PID and mount namespace.
//
//	fusefixture serve -mode M -mount DIR [-name N] [-self-read] [-hold] [-spawn-ns] [-ready FILE] [-- cmd args…]
//	fusefixture init [-private=true] [-n N] [-ready FILE] -- cmd args…
//	fusefixture hold [-ready FILE] FILE
//	fusefixture read FILE
//	fusefixture stat PATH
//
// Progress is reported as lines on stdout, one write each (atomic on a
// pipe shared by several processes):
//
//	fusefixture: EVENT key=value …
//
// with EVENT one of mounted (conn, dir, mode), held (path, fd), spawned
// (by, pid), blocked (op), reaped (by, pid, status), read (n, data in hex),
// stat, and ready (role) once the process is armed. Pids are as seen in the
// emitter's PID namespace. -ready FILE also appends "ready\n" to FILE.
//
// Built with CGO_ENABLED=0 it is static and runs in a busybox image too.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		err = serve(args)
	case "init":
		err = initCmd(args)
	case "hold":
		err = hold(args)
	case "read":
		err = read(args)
	case "stat":
		err = stat(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fusefixture %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: fusefixture serve|init|hold|read|stat [flags] [args]")
	os.Exit(2)
}
