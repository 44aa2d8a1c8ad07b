package main

import (
	"context"
)

// demoChildCommand is the hidden subcommand the demo re-executes itself
// with, to play the container's init and its FUSE daemon.
const demoChildCommand = "__demo-child"

func cmdDemo(ctx context.Context, a *app, args []string) int {
	return a.fail(exitFailure, "demo: not yet")
}

func demoChild(ctx context.Context, a *app, args []string) int {
	return exitFailure
}
