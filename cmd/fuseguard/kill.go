package main

import (
	"context"
	"flag"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/killer"
)

func cmdKill(ctx context.Context, a *app, args []string) int {
	var tf targetFlags
	var verifyOnly bool
	fs, c, code, ok := a.command("kill", args, func(fs *flag.FlagSet, c *config.Config) {
		tf.bind(fs, c)
		fs.BoolVar(&verifyOnly, "verify-only", false, "do not signal: the runtime already sent SIGKILL; only verify and rescue")
	})
	if !ok {
		return code
	}
	t, opts, code, err := tf.resolve(a, c, fs.Args())
	if err != nil {
		return a.fail(code, "kill: %v", err)
	}
	opts.VerifyOnly = verifyOnly
	ctx, tr, shutdown := a.tracing(ctx, a.log)
	defer shutdown()
	opts.Tracer = tr
	rep, err := killer.Kill(ctx, t, opts)
	if tf.json {
		if jerr := a.printJSON(rep); jerr != nil {
			return a.fail(exitFailure, "kill: %v", jerr)
		}
	} else {
		if rep.Diagnosis != nil {
			rep.Diagnosis.Explain(a.stdout)
		}
		rep.Timeline(a.stdout)
	}
	if err == nil && rep.Outcome == killer.OutcomeAlreadyGone {
		return a.fail(exitNoTarget, "kill: pid %d: no such process", t.PID)
	}
	if err != nil {
		return a.fail(targetExit(err), "kill: %v", err)
	}
	return exitOK
}
