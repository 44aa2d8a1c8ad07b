package wrapper

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// FlagPrefix starts every flag of the wrapper's own.
const FlagPrefix = "--fuseguard-"

// Environment variables read when the matching flag is absent.
const (
	EnvRuntime = "FUSEGUARD_RUNTIME"
	// The state directory uses fuseguard.EnvStateDir.
)

// ErrUsage is returned for a --fuseguard- flag that is unknown, lacks its
// value or has a bad one.
var ErrUsage = errors.New("bad fuseguard runtime flag")

// Flags are the wrapper's own options.
type Flags struct {
	// Config is the node configuration file (--fuseguard-config); ""
	// means $FUSEGUARD_CONFIG or the default (config.Node).
	Config string
	// Runtime is the real runtime, a path or a name looked up on PATH
	// (--fuseguard-runtime).
	Runtime string
	// StateDir is where the records are (--fuseguard-state-dir).
	StateDir string
	// VerifyTimeout and RecoverTimeout bound the rescue after a kill
	// (--fuseguard-verify-timeout, --fuseguard-recover-timeout); 0 means
	// the configuration's.
	VerifyTimeout, RecoverTimeout time.Duration
}

// runcGlobalValues are runc's global flags that take a value: the wrapper
// must step over their value to find its own flags among the global ones.
var runcGlobalValues = []string{"log", "log-format", "root", "criu", "rootless"}

// StripFlags removes the wrapper's flags (--fuseguard-NAME VALUE or
// --fuseguard-NAME=VALUE) from the global flags of a runc command line,
// i.e. before the subcommand or a "--", and returns them with the rest of
// args, in order. Arguments from the subcommand on are never looked at, so
// a container's own arguments cannot be mistaken for ours. args is not
// modified.
func StripFlags(args []string) (Flags, []string, error) {
	var f Flags
	rest := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, FlagPrefix) {
			if arg == "--" || arg == "-" || !strings.HasPrefix(arg, "-") {
				// The subcommand (or the end of the flags): the rest is not ours.
				return f, append(rest, args[i:]...), nil
			}
			rest = append(rest, arg)
			if takesValue(arg) && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg, FlagPrefix), "=")
		if !hasValue {
			if i+1 >= len(args) {
				return f, nil, fmt.Errorf("%w: %s needs a value", ErrUsage, arg)
			}
			i++
			value = args[i]
		}
		if err := f.set(name, value); err != nil {
			return f, nil, err
		}
	}
	return f, rest, nil
}

// takesValue reports whether arg is a runc global flag whose value is the
// next argument (Go flag syntax: -f or --f, no "=").
func takesValue(arg string) bool {
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	return !strings.Contains(name, "=") && slices.Contains(runcGlobalValues, name)
}

func (f *Flags) set(name, value string) error {
	switch name {
	case "config":
		if value == "" {
			return fmt.Errorf("%w: %sconfig is empty", ErrUsage, FlagPrefix)
		}
		f.Config = value
	case "runtime":
		if value == "" {
			return fmt.Errorf("%w: %sruntime is empty", ErrUsage, FlagPrefix)
		}
		f.Runtime = value
	case "state-dir":
		if value == "" {
			return fmt.Errorf("%w: %sstate-dir is empty", ErrUsage, FlagPrefix)
		}
		f.StateDir = value
	case "verify-timeout", "recover-timeout":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return fmt.Errorf("%w: %s%s %q: want a positive duration such as 2s", ErrUsage, FlagPrefix, name, value)
		}
		if name == "verify-timeout" {
			f.VerifyTimeout = d
		} else {
			f.RecoverTimeout = d
		}
	default:
		return fmt.Errorf("%w: unknown flag %s%s (known: config, runtime, state-dir, verify-timeout, recover-timeout)", ErrUsage, FlagPrefix, name)
	}
	return nil
}
