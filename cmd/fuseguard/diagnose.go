package main

import (
	"context"
	"encoding/json"

	"github.com/fuseguard/fuseguard/killer"
)

func cmdDiagnose(ctx context.Context, a *app, args []string) int {
	fs, format, level := a.flags("diagnose")
	var tf targetFlags
	tf.register(fs)
	if code, ok := a.parse(fs, format, level, args); !ok {
		return code
	}
	t, opts, code, err := tf.resolve(a, fs.Args())
	if err != nil {
		return a.fail(code, "diagnose: %v", err)
	}
	d, err := killer.Diagnose(ctx, t, opts)
	if err != nil {
		return a.fail(targetExit(err), "diagnose: %v", err)
	}
	if tf.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return a.fail(exitFailure, "diagnose: %v", err)
		}
		return exitOK
	}
	d.Explain(a.stdout)
	return exitOK
}
