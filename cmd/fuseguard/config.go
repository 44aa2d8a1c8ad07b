package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/record"
)

// configUsage is the help of --config, which every command has.
const configUsage = "node configuration `FILE` (default $" + config.EnvPath + " or " + config.DefaultPath + ", which may be missing)"

// command parses a command's flags over the node configuration: bind
// registers the command's flags, those naming a configuration key on c's
// fields, so that a flag given overrides the file (flags > environment >
// file > defaults). With a.failOpen, a bad or missing file is reported
// and the defaults are used (a.configErr). It returns the flag set and the effective
// configuration, or an exit code when the command must stop (help asked,
// bad flags, a bad or missing configuration file).
func (a *app) command(name string, args []string, bind func(fs *flag.FlagSet, c *config.Config)) (*flag.FlagSet, config.Config, int, bool) {
	// First pass, silent: only to learn --config, which decides the
	// values the flags override. The second pass reports what is wrong.
	path := ""
	scratch := config.Defaults()
	fs := a.newFlagSet(name, &scratch, &path, bind)
	fs.SetOutput(io.Discard)
	_ = fs.Parse(args)

	c, file, err := config.Node(path, a.getenv)
	switch {
	case err != nil && a.failOpen:
		// A container must not fail to start for a broken node file:
		// the defaults abort the least. The command logs configErr.
		a.configErr = err
		c = config.Defaults()
		config.ApplyEnv(&c, a.getenv)
	case err != nil:
		return nil, config.Config{}, a.fail(exitUsage, "%s: %v", name, err), false
	}
	a.configFile = absPath(file)
	fs = a.newFlagSet(name, &c, &path, bind)
	if code, ok := a.parse(fs, args); !ok {
		return nil, config.Config{}, code, false
	}
	if err := c.Validate(); err != nil {
		return nil, config.Config{}, a.fail(exitUsage, "%s: %v", name, err), false
	}
	a.setLogging(c.Log)
	return fs, c, 0, true
}

func (a *app) newFlagSet(name string, c *config.Config, path *string, bind func(*flag.FlagSet, *config.Config)) *flag.FlagSet {
	fs := flag.NewFlagSet("fuseguard "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(path, "config", "", configUsage)
	fs.StringVar(&c.Log.Format, "log-format", c.Log.Format, "log format: text or json (log.format)")
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "log level: debug, info, warn, error (log.level)")
	if bind != nil {
		bind(fs, c)
	}
	return fs
}

// The flags that name a configuration key, by group; each usage ends with
// the key.

func bindStateDir(fs *flag.FlagSet, c *config.Config) {
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "state directory of the records (state_dir; also $"+record.EnvStateDir+")")
}

func bindPolicy(fs *flag.FlagSet, c *config.Config) {
	fs.Var(&listFlag{list: &c.Policy.AllowSharedFSTypes}, "allow-shared-fstype", allowSharedUsage+" (policy.allow_shared_fstypes)")
	fs.BoolVar(&c.Policy.AbortShared, "abort-shared", c.Policy.AbortShared, "abort shared connections too (dangerous: they serve the host) (policy.abort_shared)")
	fs.Var(&listFlag{list: &c.Policy.DedicatedPrefixes}, "dedicated-prefix", "host `DIR` (e.g. /var/lib/kubelet/pods) under which DIR/<pod UID> is one pod's own: a shared connection mounted on the host only there and used by no other pod's live container may be aborted; repeatable (policy.dedicated_prefixes)")
}

func bindRecoverTimeout(fs *flag.FlagSet, c *config.Config) {
	fs.Var((*durationFlag)(&c.Timeouts.Recover), "recover-timeout", "how long the aborts and the wait for the exit after them may take, together (timeouts.recover)")
}

func bindTimeouts(fs *flag.FlagSet, c *config.Config) {
	fs.Var((*durationFlag)(&c.Timeouts.Verify), "verify-timeout", "how long to wait for the exit after SIGKILL (timeouts.verify)")
	fs.Var((*durationFlag)(&c.Timeouts.Diagnose), "diagnose-timeout", "how long the diagnosis may read /proc; what it cannot read in time is reported as unreadable (timeouts.diagnose)")
	bindRecoverTimeout(fs, c)
}

func bindWatch(fs *flag.FlagSet, c *config.Config) {
	w := &c.Watch
	fs.Var((*durationFlag)(&w.Grace), "grace", "how long init may be exiting before the exit counts as stuck (watch.grace)")
	fs.Var((*durationFlag)(&w.CheckInterval), "check-interval", "without exit notifications, how often each init's PF_EXITING flag is read (watch.check_interval)")
	fs.StringVar(&w.ExitEvents, "exit-events", w.ExitEvents, "auto: learn from the kernel's taskstats notifications which init begins to exit, else poll every check-interval; off: poll (watch.exit_events)")
	fs.Var((*durationFlag)(&w.SafetyCheckInterval), "safety-check-interval", "with exit notifications, how often every init is checked all the same (watch.safety_check_interval)")
	fs.Var((*durationFlag)(&w.RescanInterval), "rescan-interval", "safety rescan of the records, and of mount tables whose last read failed (watch.rescan_interval)")
	fs.Var((*durationFlag)(&w.RetryInterval), "retry-interval", "wait before rescuing a container still stuck again; doubles after each failed rescue (watch.retry_interval)")
	fs.Var((*durationFlag)(&w.MaxRetryInterval), "max-retry-interval", "cap of the doubling wait between rescues (watch.max_retry_interval)")
	fs.Var((*durationFlag)(&w.RescueTimeout), "rescue-timeout", "deadline of one rescue; 0: 2 × recover-timeout + 2s (watch.rescue_timeout)")
	fs.IntVar(&w.MaxRescues, "max-rescues", w.MaxRescues, "rescues running at once, over all containers (watch.max_rescues)")
	fs.Var((*durationFlag)(&w.MountReadInterval), "mount-read-interval", "shortest time between two reads of one container's mount table (watch.mount_read_interval)")
	fs.IntVar(&w.MaxTracked, "max-tracked", w.MaxTracked, "records tracked at once; more are logged and shown by status (watch.max_tracked)")
	fs.StringVar(&w.MetricsAddr, "metrics-addr", w.MetricsAddr, "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9477; \"\": off (watch.metrics_addr)")
	fs.StringVar(&c.Log.File, "log-file", c.Log.File, "log to this file, size-capped and rotated; \"\": stderr, e.g. the journal under systemd (log.file)")
}

// durationFlag sets a config.Duration from a Go duration.
type durationFlag config.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

// listFlag is a repeatable flag whose values replace the configuration's
// list: the first use drops the file's values, the next ones add to it.
type listFlag struct {
	list *[]string
	set  bool
}

func (l *listFlag) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}

func (l *listFlag) Set(v string) error {
	if !l.set {
		*l.list, l.set = nil, true
	}
	*l.list = append(*l.list, v)
	return nil
}

// cmdConfig prints the effective configuration: defaults, then the file,
// the environment and the flags given here.
func cmdConfig(ctx context.Context, a *app, args []string) int {
	var asJSON bool
	fs, c, code, ok := a.command("config", args, func(fs *flag.FlagSet, c *config.Config) {
		bindStateDir(fs, c)
		bindPolicy(fs, c)
		bindTimeouts(fs, c)
		bindWatch(fs, c)
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of TOML")
	})
	if !ok {
		return code
	}
	if fs.NArg() != 0 {
		return a.fail(exitUsage, "config: takes no arguments")
	}
	var err error
	if asJSON {
		err = a.printJSON(c)
	} else {
		from := "no file: defaults"
		if a.configFile != "" {
			from = a.configFile
		}
		fmt.Fprintf(a.stdout, "# effective fuseguard configuration (%s, then environment and flags)\n", from)
		err = c.WriteTOML(a.stdout)
	}
	if err != nil {
		return a.fail(exitFailure, "config: %v", err)
	}
	return exitOK
}

// absPath makes path absolute, for a process that runs elsewhere (a hook's
// watcher runs in /); "" stays "".
func absPath(path string) string {
	if path == "" {
		return ""
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
