package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/telemetry"
	"github.com/fuseguard/fuseguard/wrapper"
)

// runtimeArgv0 is the name under which the binary acts as the runtime
// wrapper (a symlink, so daemon.json needs only a path).
const runtimeArgv0 = "fuseguard-runtime"

// cmdRuntime is `fuseguard runtime [--fuseguard-FLAG …] <runc args>`, also
// run as fuseguard-runtime: a runc-compatible runtime that injects the hooks
// at create and rescues a wedged init after kill (package wrapper).
func cmdRuntime(ctx context.Context, a *app, args []string) int {
	f, rest, err := wrapper.StripFlags(args)
	if err != nil {
		return a.fail(exitUsage, "runtime: %v", err)
	}
	if f.Runtime == "" {
		f.Runtime = a.getenv(wrapper.EnvRuntime)
	}
	if f.StateDir == "" {
		f.StateDir = a.getenv(fuseguard.EnvStateDir)
	}
	self, err := os.Executable()
	if err != nil {
		self = ""
	}
	rt, err := wrapper.ResolveRuntime(f.Runtime, self)
	if err != nil {
		code := exitFailure
		if errIs(err, wrapper.ErrRuntimeIsSelf) {
			code = exitUsage
		}
		return a.fail(code, "runtime: %v", err)
	}
	store := fuseguard.NewStore(f.StateDir)
	var hookEnv []string
	if f.StateDir != "" {
		dir, err := filepath.Abs(f.StateDir)
		if err != nil {
			dir = f.StateDir
		}
		hookEnv = append(hookEnv, fuseguard.EnvStateDir+"="+dir)
	}
	if v := a.getenv(envWatcher); v != "" {
		hookEnv = append(hookEnv, envWatcher+"="+v)
	}
	// runc gives hooks only this env: the tracing configuration goes
	// along; the wrapper adds the TRACEPARENT of its create span.
	hookEnv = append(hookEnv, telemetry.PassEnv(a.getenv)...)
	// The runtime's stderr is not a log anyone reads on success; the
	// wrapper logs to the state directory only.
	log, closeLog := stateLog(a, store.Dir, "runtime.log", nil)
	defer closeLog()
	// A caller's TRACEPARENT parents the wrapper's spans and reaches the
	// hooks through their env.
	ctx, tp, shutdown := a.tracing(ctx, log)
	defer shutdown()
	w := &wrapper.Wrapper{
		Runtime:        rt,
		Self:           self,
		Store:          store,
		HookEnv:        hookEnv,
		VerifyTimeout:  f.VerifyTimeout,
		RecoverTimeout: f.RecoverTimeout,
		Log:            log,
		Tracer:         tp.Tracer(),
		Flush:          shutdown,
	}
	return w.Run(ctx, rest)
}
