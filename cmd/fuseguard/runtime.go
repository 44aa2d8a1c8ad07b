package main

import (
	"context"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"
	"github.com/fuseguard/fuseguard/internal/wrapper"
	"github.com/fuseguard/fuseguard/record"
)

// runtimeArgv0 is the name under which the binary acts as the runtime
// wrapper, so daemon.json needs only a path: the lean build of this
// command (lean.go), or, on older installs, a symlink to fuseguard.
const runtimeArgv0 = "fuseguard-runtime"

// runtimeEntry runs the binary called as fuseguard-runtime: the runtime
// wrapper, and the hooks it injects, which run the same binary as
// `fuseguard-runtime hook STAGE` (runc has no hook command).
func runtimeEntry(ctx context.Context, a *app, args []string) int {
	if len(args) > 0 && args[0] == "hook" {
		return cmdHook(ctx, a, args[1:])
	}
	return cmdRuntime(ctx, a, args)
}

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
	// The node configuration, under the wrapper's own flags: the policy
	// of the rescue after `docker kill` is set nowhere else.
	// Fail open: a broken file must not stop containers from starting or
	// being killed; the defaults abort the least.
	c, file, cerr := runtimeConfig(f, a.getenv)
	if cerr != nil {
		a.fail(0, "runtime: %v (fail open: the defaults)", cerr)
	}
	self, err := os.Executable()
	if err != nil {
		self = ""
	}
	// Neither this binary nor the full fuseguard beside the lean one is a
	// runtime: either would run fuseguard again instead of runc.
	full, _ := fullBinary()
	rt, err := wrapper.ResolveRuntime(f.Runtime, self, full)
	if err != nil {
		code := exitFailure
		if errIs(err, wrapper.ErrRuntimeIsSelf) {
			code = exitUsage
		}
		return a.fail(code, "runtime: %v", err)
	}
	store := record.NewStore(c.StateDir)
	// The hooks read the same configuration and state directory.
	hookEnv := []string{record.EnvStateDir + "=" + absPath(c.StateDir)}
	if file != "" {
		hookEnv = append(hookEnv, config.EnvPath+"="+absPath(file))
	}
	if v := a.getenv(envWatcher); v != "" {
		hookEnv = append(hookEnv, envWatcher+"="+v)
	}
	// runc gives hooks only this env: the tracing configuration goes
	// along; the wrapper adds the TRACEPARENT of its create span.
	hookEnv = append(hookEnv, otelenv.PassEnv(a.getenv)...)
	// The runtime's stderr is not a log anyone reads on success; the
	// wrapper logs to the state directory only.
	log, closeLog := stateLog(a, store.Dir, "runtime.log", nil)
	defer closeLog()
	if lvl, err := logrus.ParseLevel(c.Log.Level); err == nil {
		log.SetLevel(lvl)
	}
	if cerr != nil {
		log.WithError(cerr).Error("configuration not read: running with the defaults (fail open)")
	}
	// A caller's TRACEPARENT parents the wrapper's spans and reaches the
	// hooks through their env.
	ctx, tr, shutdown := a.tracing(ctx, log)
	defer shutdown()
	w := runtimeWrapper(c)
	w.Runtime, w.Self, w.Store, w.HookEnv = rt, self, store, hookEnv
	w.Log, w.Tracer, w.Flush = log, tr, shutdown
	return w.Run(ctx, rest)
}

// runtimeConfig is the wrapper's effective configuration: the node's
// (config.Node), then its own flags. It also returns the file read. When
// the file is bad or missing, the configuration is the defaults, the
// environment and the flags, and the error says why.
func runtimeConfig(f wrapper.Flags, getenv func(string) string) (config.Config, string, error) {
	c, file, err := config.Node(f.Config, getenv)
	if err != nil {
		// The hooks are told of the same file, and fail open on it too.
		c, file = config.Defaults(), f.Config
		if file == "" {
			file = getenv(config.EnvPath)
		}
		config.ApplyEnv(&c, getenv)
	}
	if f.StateDir != "" {
		c.StateDir = f.StateDir
	}
	if f.VerifyTimeout > 0 {
		c.Timeouts.Verify = config.Duration(f.VerifyTimeout)
	}
	if f.RecoverTimeout > 0 {
		c.Timeouts.Recover = config.Duration(f.RecoverTimeout)
	}
	return c, file, err
}

// runtimeWrapper returns the wrapper's settings from the configuration:
// the rescue's timeouts and abort policy.
func runtimeWrapper(c config.Config) *wrapper.Wrapper {
	ko := c.KillerOptions()
	return &wrapper.Wrapper{
		VerifyTimeout:   ko.VerifyTimeout,
		DiagnoseTimeout: ko.DiagnoseTimeout,
		RecoverTimeout:  ko.RecoverTimeout,
		Policy:          ko.Policy,
	}
}
