package oci

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ErrUsage is returned for a runc command line that runc itself would
// reject (an unknown global flag, a flag without its value, a missing
// container id) — the wrapper still passes such a command line through, so
// runc reports the error in its own words — and for a bad flag of the
// wrapper's own among runc's global flags (wrapper.StripFlags), which it
// refuses.
var ErrUsage = errors.New("bad runc command line")

// Invocation is what the runtime wrapper needs to know about a runc command
// line. It never replaces argv: the wrapper execs the real runtime with the
// original arguments.
type Invocation struct {
	// GlobalFlags are the arguments before the subcommand, as given,
	// including a "--" that ends them. They are valid global flags for
	// another runc call on the same container (e.g. `state`).
	GlobalFlags []string
	// Command is the subcommand: "" when there is none (`runc --version`)
	// or when it is an empty argument.
	Command string
	// CommandArgs are all arguments after Command, as given.
	CommandArgs []string

	// ContainerID is the first argument after the subcommand's flags, for
	// every runc subcommand that takes one.
	ContainerID string
	// Bundle is --bundle/-b of create, run and restore, as given (relative
	// to the caller's working directory when relative).
	Bundle string
	// BundleDefaulted is set for create and run when Bundle is empty: runc
	// then uses its working directory, which the wrapper shares.
	BundleDefaulted bool
	// Signal is kill's signal as given, "SIGTERM" when absent (runc's
	// default); see IsSIGKILL.
	Signal string
	// All is kill --all/-a.
	All bool
	// Force is delete --force/-f.
	Force bool
	// Help is set when runc only prints help or its version (-h, --help,
	// -v, --version, globally or after the subcommand) and does nothing else.
	Help bool
	// Unknown lists the flags this parser does not know (a newer runc's,
	// or a typo the real runtime will reject). When it is not empty the
	// other fields are a best guess (see ParseRuncArgs) and the wrapper
	// says so in its log.
	Unknown []string
}

// runcCommand describes one runc subcommand's flags and arguments.
type runcCommand struct {
	values, bools []string // flags taking a value / not: "long" or "long,short"
	noReorder     bool     // urfave/cli SkipArgReorder: flags only before arguments
	minArgs       int      // 1 means the first argument is the container id
	maxArgs       int      // -1: no limit
}

// runcGlobal returns runc's global flags (runc 1.1–1.5, `runc --help`;
// --criu is gone since 1.4 and still accepted here).
func runcGlobal() runcCommand {
	return runcCommand{
		values: []string{"log", "log-format", "root", "criu", "rootless"},
		bools:  []string{"debug", "systemd-cgroup", "help,h", "version,v"},
	}
}

// GlobalFlagTakesValue reports whether arg is one of runc's global flags
// whose value is the next argument (Go flag syntax: -f or --f, no "=").
func GlobalFlagTakesValue(arg string) bool {
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	return !strings.Contains(name, "=") && slices.Contains(runcGlobal().values, name)
}

// runcSubcommand describes the subcommand name of runc 1.1 to 1.5: flags
// from each command's cli.Flag list (the union over those versions: 1.2
// added --pidfd-socket to create, run and exec), argument counts from its
// checkArgs.
func runcSubcommand(name string) (runcCommand, bool) {
	var c runcCommand
	switch name {
	case "checkpoint":
		c = runcCommand{
			values: []string{"image-path", "work-path", "parent-path", "status-fd", "page-server", "manage-cgroups-mode", "empty-ns"},
			bools: []string{"leave-running", "tcp-established", "tcp-skip-in-flight", "link-remap", "ext-unix-sk", "shell-job",
				"lazy-pages", "file-locks", "pre-dump", "auto-dedup"},
			minArgs: 1, maxArgs: 1,
		}
	case "create":
		c = runcCommand{
			values:  []string{"bundle,b", "console-socket", "pidfd-socket", "pid-file", "preserve-fds"},
			bools:   []string{"no-pivot", "no-new-keyring"},
			minArgs: 1, maxArgs: 1,
		}
	case "delete":
		c = runcCommand{bools: []string{"force,f"}, minArgs: 1, maxArgs: 1}
	case "events":
		c = runcCommand{values: []string{"interval"}, bools: []string{"stats"}, minArgs: 1, maxArgs: 1}
	case "exec":
		c = runcCommand{
			values: []string{"console-socket", "pidfd-socket", "cwd", "env,e", "user,u", "additional-gids,g", "process,p",
				"pid-file", "process-label", "apparmor", "cap,c", "preserve-fds", "cgroup"},
			bools:     []string{"tty,t", "detach,d", "no-new-privs", "ignore-paused"},
			noReorder: true, minArgs: 1, maxArgs: -1,
		}
	case "features":
	case "kill":
		c = runcCommand{bools: []string{"all,a"}, minArgs: 1, maxArgs: 2}
	case "list":
		c = runcCommand{values: []string{"format,f"}, bools: []string{"quiet,q"}}
	case "pause", "resume", "start", "state":
		c = runcCommand{minArgs: 1, maxArgs: 1}
	case "ps":
		c = runcCommand{values: []string{"format,f"}, noReorder: true, minArgs: 1, maxArgs: -1}
	case "restore":
		c = runcCommand{
			values: []string{"console-socket", "image-path", "work-path", "manage-cgroups-mode", "bundle,b", "pid-file",
				"empty-ns", "lsm-profile", "lsm-mount-context"},
			bools: []string{"tcp-established", "ext-unix-sk", "shell-job", "file-locks", "detach,d", "no-subreaper",
				"no-pivot", "auto-dedup", "lazy-pages"},
			minArgs: 1, maxArgs: 1,
		}
	case "run":
		c = runcCommand{
			values:  []string{"bundle,b", "console-socket", "pidfd-socket", "pid-file", "preserve-fds"},
			bools:   []string{"detach,d", "keep", "no-subreaper", "no-pivot", "no-new-keyring"},
			minArgs: 1, maxArgs: 1,
		}
	case "spec":
		c = runcCommand{values: []string{"bundle,b"}, bools: []string{"rootless"}}
	case "update":
		c = runcCommand{
			values: []string{"resources,r", "blkio-weight", "cpu-period", "cpu-quota", "cpu-burst", "cpu-share", "cpu-rt-period",
				"cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "kernel-memory", "kernel-memory-tcp", "memory", "cpu-idle",
				"memory-reservation", "memory-swap", "pids-limit", "l3-cache-schema", "mem-bw-schema"},
			minArgs: 1, maxArgs: 1,
		}
	default:
		return c, false
	}
	// urfave/cli adds its help flag to every command.
	c.bools = append(c.bools, "help,h")
	return c, true
}

// ParseRuncArgs parses a runc command line (os.Args[1:], without the
// program name) the way runc 1.1 does: Go flag syntax (-f, --f, -f=v,
// --f=v, -f v; "--" ends flags), global flags up to the subcommand, then
// the subcommand's flags, which urfave/cli lets appear after its arguments
// too (except for exec and ps). A subcommand runc does not have is passed
// through: Command and CommandArgs are set and nothing else.
//
// args is never modified. On error, the fields learned so far are set.
func ParseRuncArgs(args []string) (Invocation, error) {
	var inv Invocation
	global := newFlagSet(runcGlobal())
	// Global flags stay strict: runc 1.1 to 1.5 share them, so an
	// unknown one is an error the real runtime reports too.
	if err := global.parse(slices.Clone(args)); err != nil {
		return inv, fmt.Errorf("%w: global flags: %w", ErrUsage, err)
	}
	rest := global.fs.Args()
	inv.GlobalFlags = clone(args[:len(args)-len(rest)])
	// runc prints its help or version and ignores any subcommand.
	inv.Help = global.isSet("help") || global.isSet("version")
	if len(rest) == 0 || inv.Help {
		if len(rest) > 0 {
			inv.Command, inv.CommandArgs = rest[0], clone(rest[1:])
		}
		return inv, nil
	}
	inv.Command, inv.CommandArgs = rest[0], clone(rest[1:])

	spec, ok := runcSubcommand(inv.Command)
	if !ok {
		return inv, nil
	}
	cmd := newFlagSet(spec)
	cargs := slices.Clone(inv.CommandArgs)
	if !spec.noReorder {
		cargs = reorderArgs(spec, cargs)
	}
	var pos []string
	if err := cmd.parse(cargs); err == nil {
		pos = cmd.fs.Args()
	} else {
		// A flag of a newer runc must not cost the container its
		// protection: take what is known, guess the rest.
		var unknown []string
		cmd = newFlagSet(spec)
		pos, unknown = cmd.parseLenient(spec, inv.CommandArgs)
		if len(unknown) == 0 || cmd.err != nil {
			return inv, fmt.Errorf("%w: %s: %w", ErrUsage, inv.Command, err)
		}
		inv.Unknown = unknown
	}
	inv.Help = cmd.isSet("help")
	switch inv.Command {
	case "create", "run", "restore":
		inv.Bundle = cmd.value("bundle")
		inv.BundleDefaulted = inv.Bundle == "" && inv.Command != "restore"
	case "kill":
		inv.All = cmd.isSet("all")
		inv.Signal = "SIGTERM"
		if len(pos) > 1 && pos[1] != "" {
			inv.Signal = pos[1]
		}
	case "delete":
		inv.Force = cmd.isSet("force")
	}
	if spec.minArgs > 0 && len(pos) > 0 {
		inv.ContainerID = pos[0]
	}
	if inv.Help {
		return inv, nil
	}
	if len(pos) < spec.minArgs || (spec.maxArgs >= 0 && len(pos) > spec.maxArgs) {
		return inv, fmt.Errorf("%w: %s takes %s, got %d", ErrUsage, inv.Command, argCount(spec), len(pos))
	}
	if spec.minArgs > 0 && inv.ContainerID == "" {
		return inv, fmt.Errorf("%w: %s: empty container id", ErrUsage, inv.Command)
	}
	return inv, nil
}

// IsSIGKILL reports whether runc's kill would send SIGKILL for sig: runc
// takes a number as is, and a name case-insensitively with or without the
// SIG prefix ("9", "KILL", "sigkill").
func IsSIGKILL(sig string) bool {
	if n, err := strconv.Atoi(sig); err == nil {
		return n == 9
	}
	s := strings.ToUpper(sig)
	return s == "SIGKILL" || s == "KILL"
}

// clone copies s; empty is nil.
func clone(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func argCount(c runcCommand) string {
	switch {
	case c.maxArgs < 0:
		return fmt.Sprintf("at least %d argument(s)", c.minArgs)
	case c.minArgs == c.maxArgs:
		return fmt.Sprintf("exactly %d argument(s)", c.minArgs)
	}
	return fmt.Sprintf("%d to %d arguments", c.minArgs, c.maxArgs)
}

// flagSet is a flag.FlagSet that knows which names are one flag.
type flagSet struct {
	fs    *flag.FlagSet
	names map[string][]string // long name -> all its names
	err   error               // of parseLenient's known flags
}

func newFlagSet(c runcCommand) *flagSet {
	s := &flagSet{fs: flag.NewFlagSet("runc", flag.ContinueOnError), names: map[string][]string{}}
	s.fs.SetOutput(io.Discard)
	s.fs.Usage = func() {}
	for _, f := range c.bools {
		names := strings.Split(f, ",")
		s.names[names[0]] = names
		for _, n := range names {
			s.fs.Bool(n, false, "")
		}
	}
	for _, f := range c.values {
		names := strings.Split(f, ",")
		s.names[names[0]] = names
		for _, n := range names {
			s.fs.String(n, "", "")
		}
	}
	return s
}

// parse parses args and, like urfave/cli, rejects two forms of one flag
// (`-b x --bundle y`); one form given twice is fine, the last one wins.
func (s *flagSet) parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	for long, names := range s.names {
		n := 0
		s.fs.Visit(func(f *flag.Flag) {
			if slices.Contains(names, f.Name) {
				n++
			}
		})
		if n > 1 {
			return fmt.Errorf("cannot use two forms of the same flag: %s", strings.Join(s.names[long], " "))
		}
	}
	return nil
}

// value returns the flag's value under whichever of its names was given.
func (s *flagSet) value(long string) string {
	v := ""
	s.fs.Visit(func(f *flag.Flag) {
		if slices.Contains(s.names[long], f.Name) {
			v = f.Value.String()
		}
	})
	return v
}

// isSet reports whether the bool flag long is true under any of its names.
func (s *flagSet) isSet(long string) bool { return s.value(long) == "true" }

// reorderArgs moves c's flags (and a value that may follow each) before the
// other arguments, stopping at "--": urfave/cli v1's reorderArgs, which
// runc 1.1 uses, quirks included (a bool flag takes the next argument along
// when it does not start with "-").
func reorderArgs(c runcCommand, args []string) []string {
	var flags, rest []string
	mayBeValue := false
	for i, arg := range args {
		switch {
		case arg == "--":
			rest = append(rest, args[i:]...)
			return append(flags, rest...)
		case mayBeValue && !strings.HasPrefix(arg, "-"):
			mayBeValue = false
			flags = append(flags, arg)
		case isFlag(c, arg):
			flags = append(flags, arg)
			mayBeValue = !strings.Contains(arg, "=")
		default:
			rest = append(rest, arg)
		}
	}
	return append(flags, rest...)
}

// isFlag is urfave/cli v1's argIsFlag.
func isFlag(c runcCommand, arg string) bool {
	if arg == "-" || !strings.HasPrefix(arg, "-") {
		return false
	}
	if strings.HasPrefix(arg, "--") {
		arg = strings.Replace(arg, "-", "", 2)
	}
	if strings.HasPrefix(arg, "-") {
		arg = strings.Replace(arg, "-", "", 1)
	}
	arg, _, _ = strings.Cut(arg, "=")
	for _, f := range slices.Concat(c.values, c.bools) {
		if slices.Contains(strings.Split(f, ","), arg) {
			return true
		}
	}
	return false
}

// parseLenient parses a subcommand's arguments that contain flags the
// table does not know. Known flags are parsed as runc does (with their
// values); an unknown flag is taken as a bool flag, unless the command
// would then have more arguments than it accepts: then the unknown flags
// take the argument right after them as their value, from the first on,
// until the count fits. Every caller of runc we know (containerd's
// go-runc, Docker, podman's conmon, CRI-O) puts the container id last,
// which this rule always keeps. It returns the positional arguments and
// the unknown flags with the values they took.
func (s *flagSet) parseLenient(c runcCommand, args []string) (pos, unknown []string) {
	type token struct {
		arg         string
		unknownFlag bool
		takesNext   bool // an unknown flag that took the next token
		positional  bool
		valueOfFlag bool
	}
	var known []string
	var toks []token
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			for _, p := range args[i+1:] {
				toks = append(toks, token{arg: p, positional: true})
			}
			i = len(args)
		case isFlag(c, a):
			known = append(known, a)
			if s.takesValue(a) && i+1 < len(args) {
				known = append(known, args[i+1])
				i++
			}
		case a != "-" && strings.HasPrefix(a, "-"):
			toks = append(toks, token{arg: a, unknownFlag: true})
		default:
			toks = append(toks, token{arg: a, positional: true})
		}
	}
	count := 0
	for _, t := range toks {
		if t.positional {
			count++
		}
	}
	for i := 0; i+1 < len(toks) && c.maxArgs >= 0 && count > c.maxArgs; i++ {
		if toks[i].unknownFlag && !strings.Contains(toks[i].arg, "=") && toks[i+1].positional {
			toks[i].takesNext = true
			toks[i+1].positional, toks[i+1].valueOfFlag = false, true
			count--
		}
	}
	for _, t := range toks {
		switch {
		case t.positional:
			pos = append(pos, t.arg)
		case t.unknownFlag, t.valueOfFlag:
			unknown = append(unknown, t.arg)
		}
	}
	s.err = s.parse(known)
	return pos, unknown
}

// flagName is the name in -name, --name or --name=value.
func flagName(arg string) string {
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	name, _, _ = strings.Cut(name, "=")
	return name
}

// takesValue reports whether arg is a known flag that takes a value and
// does not carry it (--flag=value).
func (s *flagSet) takesValue(arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	f := s.fs.Lookup(flagName(arg))
	if f == nil {
		return false
	}
	bf, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !bf.IsBoolFlag()
}
