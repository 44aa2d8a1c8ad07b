//go:build !fuseguard_lean

// The full build's commands. The lean build, fuseguard-runtime (lean.go),
// runs only the wrapper and its hooks, and leaves out the files that link
// the heavy packages: tracing.go, watch.go, doctor.go.

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
)

type command struct {
	summary string
	run     func(ctx context.Context, a *app, args []string) int
}

func commands() map[string]command {
	return map[string]command{
		"kill":     {"kill a container's init and rescue it if it is stuck in FUSE", cmdKill},
		"diagnose": {"explain why a container's init does not exit (changes nothing)", cmdDiagnose},
		"version":  {"print the version", cmdVersion},
		"watch":    {"run the node watcher: keep records current, rescue stuck exits", cmdWatch},
		"status":   {"list tracked containers and their FUSE connections", cmdStatus},
		"doctor":   {"check whether this node can be protected (exit 1 if not)", cmdDoctor},
		"hook":     {"OCI hook: record the container at createRuntime/poststart, forget it at poststop", cmdHook},
		"config":   {"print the effective node configuration (file, environment, flags)", cmdConfig},
		"runtime":  {"runc-compatible runtime wrapper: inject the hooks, rescue a wedged kill", cmdRuntime},
	}
}

func run(ctx context.Context, argv0 string, args []string) int {
	a := newApp()
	if argv0 == runtimeArgv0 {
		return runtimeEntry(ctx, a, args)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(a.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(a.stderr, "fuseguard: unknown command %q (try fuseguard help)\n", args[0])
		return exitUsage
	}
	return cmd.run(ctx, a, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fuseguard COMMAND [flags] [args]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nexit codes: 0 ok, 1 still stuck or failed, 2 usage, 3 no such process or pid reused")
}

// fullBinary is the fuseguard binary that runs the node watcher: this one.
func fullBinary() (string, error) {
	return os.Executable()
}
