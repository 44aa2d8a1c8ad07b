package main

import (
	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/internal/watch"
)

// watchOptions returns the watcher's options from the node configuration;
// the caller adds Log, Tracer and the like. It lives here, not in package
// config, so that the public config exposes no internal type.
func watchOptions(c config.Config) watch.Options {
	return watch.Options{
		StateDir:            c.StateDir,
		Grace:               c.Watch.Grace.Std(),
		CheckInterval:       c.Watch.CheckInterval.Std(),
		RescanInterval:      c.Watch.RescanInterval.Std(),
		ExitEvents:          c.Watch.ExitEvents,
		SafetyCheckInterval: c.Watch.SafetyCheckInterval.Std(),
		RetryInterval:       c.Watch.RetryInterval.Std(),
		MaxRetryInterval:    c.Watch.MaxRetryInterval.Std(),
		RecoverTimeout:      c.Timeouts.Recover.Std(),
		RescueTimeout:       c.Watch.RescueTimeout.Std(),
		MaxRescues:          c.Watch.MaxRescues,
		MountReadInterval:   c.Watch.MountReadInterval.Std(),
		MaxTracked:          c.Watch.MaxTracked,
		Policy:              c.KillerPolicy(),
	}
}
