package main

import (
	"context"
	"flag"
	"time"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/demo"
)

// demoChildCommand is the hidden subcommand the demo re-executes this
// binary with, to play the container's init and its FUSE daemon.
const demoChildCommand = demo.ChildCommand

func cmdDemo(ctx context.Context, a *app, args []string) int {
	var verify time.Duration
	fs, _, code, ok := a.command("demo", args, func(fs *flag.FlagSet, _ *config.Config) {
		fs.DurationVar(&verify, "verify-timeout", 0, "killer's verify timeout (default 2s)")
	})
	if !ok {
		return code
	}
	if fs.NArg() != 0 {
		return a.fail(exitUsage, "demo: takes no arguments")
	}
	ctx, tp, shutdown := a.tracing(ctx, a.log)
	defer shutdown()
	err := demo.Run(ctx, a.stdout, demo.Options{VerifyTimeout: verify, Log: a.log, Tracer: tp.Tracer()})
	if err != nil {
		return a.fail(exitFailure, "demo: %v", err)
	}
	return exitOK
}

func demoChild(_ context.Context, _ *app, args []string) int { return demo.Child(args) }
