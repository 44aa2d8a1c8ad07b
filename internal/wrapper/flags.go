package wrapper

import (
	"fmt"
	"strings"
	"time"

	"github.com/fuseguard/fuseguard/internal/oci"
)

// FlagPrefix starts every flag of the wrapper's own.
const FlagPrefix = "--fuseguard-"

// Environment variables read when the matching flag is absent.
const (
	EnvRuntime = "FUSEGUARD_RUNTIME"
	// The state directory uses record.EnvStateDir.
)

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
			// The wrapper steps over a global flag's value to find its
			// own flags among the global ones.
			if oci.GlobalFlagTakesValue(arg) && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg, FlagPrefix), "=")
		if !hasValue {
			if i+1 >= len(args) {
				return f, nil, fmt.Errorf("%w: %s needs a value", oci.ErrUsage, arg)
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

func (f *Flags) set(name, value string) error {
	switch name {
	case "config":
		if value == "" {
			return fmt.Errorf("%w: %sconfig is empty", oci.ErrUsage, FlagPrefix)
		}
		f.Config = value
	case "runtime":
		if value == "" {
			return fmt.Errorf("%w: %sruntime is empty", oci.ErrUsage, FlagPrefix)
		}
		f.Runtime = value
	case "state-dir":
		if value == "" {
			return fmt.Errorf("%w: %sstate-dir is empty", oci.ErrUsage, FlagPrefix)
		}
		f.StateDir = value
	case "verify-timeout", "recover-timeout":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return fmt.Errorf("%w: %s%s %q: want a positive duration such as 2s", oci.ErrUsage, FlagPrefix, name, value)
		}
		if name == "verify-timeout" {
			f.VerifyTimeout = d
		} else {
			f.RecoverTimeout = d
		}
	default:
		return fmt.Errorf("%w: unknown flag %s%s (known: config, runtime, state-dir, verify-timeout, recover-timeout)", oci.ErrUsage, FlagPrefix, name)
	}
	return nil
}
