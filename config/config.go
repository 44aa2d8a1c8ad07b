// Package config is fuseguard's node configuration: one TOML file,
// /etc/fuseguard/config.toml by default, read by every entry point (hook,
// runtime wrapper, watcher, kill, diagnose) and loadable by the executor
// library. Precedence: flags > environment > file > defaults; the
// commands apply the flags, Node the rest.
//
// A missing default file means the defaults; a file named explicitly
// (--config, $FUSEGUARD_CONFIG) must exist. An unknown key or a bad value
// is an error naming the key and the file (and the line when the TOML
// library knows it): a typo in the policy must not silently fall back to
// a default.
package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/record"
)

// DefaultPath is the node configuration read when neither --config nor
// EnvPath names one.
const DefaultPath = "/etc/fuseguard/config.toml"

// EnvPath names the configuration file when --config is absent.
const EnvPath = "FUSEGUARD_CONFIG"

// DefaultDockerTimeout bounds one Docker call of the executor library
// (executor.DefaultDockerTimeout). A healthy daemon answers an inspect in
// milliseconds and a kill of a healthy container well within it.
const DefaultDockerTimeout = 2 * time.Second

// DefaultHookTimeout bounds one hook run, well inside the runtime's own
// hook timeout (oci.DefaultHookTimeout).
const DefaultHookTimeout = 5 * time.Second

var (
	// ErrNotFound is returned (wrapped) when a configuration file named
	// explicitly does not exist.
	ErrNotFound = errors.New("configuration file not found")
	// ErrInvalid is returned (wrapped) for a file that is not valid TOML,
	// or a key with a value of the wrong type or out of range.
	ErrInvalid = errors.New("invalid configuration")
	// ErrUnknownKey is returned (wrapped, together with ErrInvalid) for a
	// key fuseguard does not know.
	ErrUnknownKey = errors.New("unknown key")
)

// Config is the node configuration. The zero value is not the defaults:
// start from Defaults.
type Config struct {
	// StateDir holds the records, the watcher's lock and the hook and
	// runtime logs ($FUSEGUARD_STATE_DIR overrides the file).
	StateDir string   `toml:"state_dir" json:"state_dir"`
	Policy   Policy   `toml:"policy" json:"policy"`
	Timeouts Timeouts `toml:"timeouts" json:"timeouts"`
	Watch    Watch    `toml:"watch" json:"watch"`
	Log      Log      `toml:"log" json:"log"`
}

// Policy is the abort policy of every rescue: kill, the runtime wrapper's
// rescue after `docker kill`, the watcher and the executor (killer.Policy).
type Policy struct {
	// AllowSharedFSTypes lists fs types ("fuse.NAME", as diagnose reports
	// them) whose shared connections may be aborted.
	AllowSharedFSTypes []string `toml:"allow_shared_fstypes" json:"allow_shared_fstypes"`
	// AbortShared aborts shared connections of every type.
	AbortShared bool `toml:"abort_shared" json:"abort_shared"`
	// DedicatedPrefixes turns the dedicated class on (killer.Policy):
	// host directories ("/var/lib/kubelet/pods") under which
	// <prefix>/<pod UID> is one pod's own. Empty: off.
	DedicatedPrefixes []string `toml:"dedicated_prefixes" json:"dedicated_prefixes"`
}

// Timeouts bound the work of every entry point.
type Timeouts struct {
	// Verify, Diagnose and Recover are killer.Options' budgets, used by
	// kill, diagnose, the runtime wrapper's rescue and the executor; the
	// watcher uses Recover.
	Verify   Duration `toml:"verify" json:"verify"`
	Diagnose Duration `toml:"diagnose" json:"diagnose"`
	Recover  Duration `toml:"recover" json:"recover"`
	// Hook bounds one hook run.
	Hook Duration `toml:"hook" json:"hook"`
	// Docker bounds each Docker call of the executor library.
	Docker Duration `toml:"docker" json:"docker"`
}

// Watch tunes the node watcher (watch.Options).
type Watch struct {
	Grace          Duration `toml:"grace" json:"grace"`
	CheckInterval  Duration `toml:"check_interval" json:"check_interval"`
	RescanInterval Duration `toml:"rescan_interval" json:"rescan_interval"`
	// ExitEvents is "auto" (the kernel's taskstats exit notifications when
	// available, else polling every CheckInterval) or "off" (polling).
	ExitEvents string `toml:"exit_events" json:"exit_events"`
	// SafetyCheckInterval: with exit notifications, how often every init
	// is checked all the same.
	SafetyCheckInterval Duration `toml:"safety_check_interval" json:"safety_check_interval"`
	RetryInterval       Duration `toml:"retry_interval" json:"retry_interval"`
	MaxRetryInterval    Duration `toml:"max_retry_interval" json:"max_retry_interval"`
	// RescueTimeout 0 means the killer's bound (watch.RescueBound).
	RescueTimeout     Duration `toml:"rescue_timeout" json:"rescue_timeout"`
	MaxRescues        int      `toml:"max_rescues" json:"max_rescues"`
	MountReadInterval Duration `toml:"mount_read_interval" json:"mount_read_interval"`
	MaxTracked        int      `toml:"max_tracked" json:"max_tracked"`
	// MetricsAddr serves Prometheus metrics at http://MetricsAddr/metrics;
	// "" is off.
	MetricsAddr string `toml:"metrics_addr" json:"metrics_addr"`
}

// Log is how the commands log.
type Log struct {
	// Format is text or json; Level is debug, info, warn or error.
	Format string `toml:"format" json:"format"`
	Level  string `toml:"level" json:"level"`
	// File is the watcher's log file, size-capped and rotated; "" is
	// stderr (the journal under systemd). The hook and the runtime
	// wrapper always log to the state directory.
	File string `toml:"file" json:"file"`
}

// Defaults returns the configuration used when no file sets a key.
func Defaults() Config {
	return Config{
		StateDir: record.DefaultStateDir,
		Policy:   Policy{AllowSharedFSTypes: []string{}, DedicatedPrefixes: []string{}},
		Timeouts: Timeouts{
			Verify:   Duration(killer.DefaultVerifyTimeout),
			Diagnose: Duration(killer.DefaultDiagnoseTimeout),
			Recover:  Duration(killer.DefaultRecoverTimeout),
			Hook:     Duration(DefaultHookTimeout),
			Docker:   Duration(DefaultDockerTimeout),
		},
		Watch: Watch{
			Grace:               Duration(watch.DefaultGrace),
			CheckInterval:       Duration(watch.DefaultCheckInterval),
			RescanInterval:      Duration(watch.DefaultRescanInterval),
			ExitEvents:          watch.ExitEventsAuto,
			SafetyCheckInterval: Duration(watch.DefaultSafetyCheckInterval),
			RetryInterval:       Duration(watch.DefaultRetryInterval),
			MaxRetryInterval:    Duration(watch.DefaultMaxRetryInterval),
			MaxRescues:          watch.DefaultMaxRescues,
			MountReadInterval:   Duration(watch.DefaultMountReadInterval),
			MaxTracked:          watch.DefaultMaxTracked,
		},
		Log: Log{Format: "text", Level: "info"},
	}
}

// Duration is a time.Duration written as Go writes it ("2s", "500ms") in
// TOML and JSON alike. A negative one is refused when decoded.
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration ("2s"); negative ones are refused.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q: want one such as \"2s\" or \"500ms\"", b)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Validate checks every value's range; the error names the key.
func (c Config) Validate() error {
	if c.StateDir == "" {
		return invalid("state_dir", "empty")
	}
	for _, t := range c.Policy.AllowSharedFSTypes {
		if err := checkFSType(t); err != nil {
			return invalid("policy.allow_shared_fstypes", "%q: %v", t, err)
		}
	}
	for _, p := range c.Policy.DedicatedPrefixes {
		if err := fuseconn.ValidatePrefix(p); err != nil {
			return invalid("policy.dedicated_prefixes", "%v", err)
		}
	}
	for _, p := range []struct {
		key string
		d   Duration
	}{
		{"timeouts.verify", c.Timeouts.Verify},
		{"timeouts.diagnose", c.Timeouts.Diagnose},
		{"timeouts.recover", c.Timeouts.Recover},
		{"timeouts.hook", c.Timeouts.Hook},
		{"timeouts.docker", c.Timeouts.Docker},
		{"watch.grace", c.Watch.Grace},
		{"watch.check_interval", c.Watch.CheckInterval},
		{"watch.rescan_interval", c.Watch.RescanInterval},
		{"watch.safety_check_interval", c.Watch.SafetyCheckInterval},
		{"watch.retry_interval", c.Watch.RetryInterval},
		{"watch.max_retry_interval", c.Watch.MaxRetryInterval},
		{"watch.mount_read_interval", c.Watch.MountReadInterval},
	} {
		if p.d <= 0 {
			return invalid(p.key, "%s: want a positive duration such as \"2s\"", p.d.Std())
		}
	}
	if c.Watch.ExitEvents != watch.ExitEventsAuto && c.Watch.ExitEvents != watch.ExitEventsOff {
		return invalid("watch.exit_events", "%q: want %q or %q", c.Watch.ExitEvents, watch.ExitEventsAuto, watch.ExitEventsOff)
	}
	if c.Watch.RescueTimeout < 0 {
		return invalid("watch.rescue_timeout", "%s: want a positive duration, or 0 for the killer's bound", c.Watch.RescueTimeout.Std())
	}
	if c.Watch.MaxRescues <= 0 {
		return invalid("watch.max_rescues", "%d: want a positive number", c.Watch.MaxRescues)
	}
	if c.Watch.MaxTracked <= 0 {
		return invalid("watch.max_tracked", "%d: want a positive number", c.Watch.MaxTracked)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return invalid("log.format", "%q: want text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "warning", "error":
	default:
		return invalid("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	return nil
}

// checkFSType accepts the fs types of FUSE mounts as /proc/PID/mountinfo
// and diagnose write them: fuse, fuseblk, fuse.NAME or fuseblk.NAME, where
// NAME is what the daemon chose (printable, no space).
func checkFSType(t string) error {
	base, sub, hasSub := strings.Cut(t, ".")
	if base != "fuse" && base != "fuseblk" {
		return errors.New(`not a FUSE fs type: want "fuse.NAME" as diagnose reports it`)
	}
	if hasSub && sub == "" {
		return errors.New("empty subtype")
	}
	for _, r := range sub {
		if r <= ' ' || r == 0x7f {
			return errors.New("subtype has a space or control character")
		}
	}
	return nil
}

func invalid(key, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, key, fmt.Sprintf(format, args...))
}

// KillerOptions returns the timeouts and the abort policy as killer
// options; the caller adds Record, Proc, Log, Tracer and the like.
func (c Config) KillerOptions() killer.Options {
	return killer.Options{
		VerifyTimeout:   c.Timeouts.Verify.Std(),
		DiagnoseTimeout: c.Timeouts.Diagnose.Std(),
		RecoverTimeout:  c.Timeouts.Recover.Std(),
		Policy:          c.KillerPolicy(),
	}
}

// KillerPolicy returns the abort policy. With the dedicated class on, the
// records of the state directory tell the pod's other containers.
func (c Config) KillerPolicy() killer.Policy {
	p := killer.Policy{
		AllowSharedFSTypes: append([]string(nil), c.Policy.AllowSharedFSTypes...),
		AbortShared:        c.Policy.AbortShared,
	}
	if len(c.Policy.DedicatedPrefixes) > 0 {
		p.DedicatedPrefixes = append([]string(nil), c.Policy.DedicatedPrefixes...)
		p.Records = &record.Store{Dir: c.StateDir}
	}
	return p
}
