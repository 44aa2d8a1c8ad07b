package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set at link time (-ldflags "-X main.version=…"); else the
// module version from the build info.
var version = ""

func cmdVersion(_ context.Context, a *app, args []string) int {
	if len(args) > 0 {
		return a.fail(exitUsage, "version: takes no arguments")
	}
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(a.stdout, "fuseguard %s\n", v)
	return exitOK
}
