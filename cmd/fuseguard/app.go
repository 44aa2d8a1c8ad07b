package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/internal/untrusted"
)

// Exit codes, documented in the package comment and README.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNoTarget = 3
)

// app is what every command shares: output streams and the logger.
type app struct {
	stdout, stderr io.Writer
	log            *logrus.Logger
	getenv         func(string) string
	// configFile is the configuration file read, "" when none was.
	configFile string
	// failOpen makes a.command go on with the defaults when the
	// configuration file is bad (DESIGN: a fuseguard error never stops a
	// container from starting or being killed); configErr says why.
	failOpen  bool
	configErr error
}

type command struct {
	summary string
	run     func(ctx context.Context, a *app, args []string) int
}

func commands() map[string]command {
	return map[string]command{
		"kill":     {"kill a container's init and rescue it if it is stuck in FUSE", cmdKill},
		"diagnose": {"explain why a container's init does not exit (changes nothing)", cmdDiagnose},
		"version":  {"print the version", cmdVersion},
		"watch":    {"run the node watcher: keep records current, rescue stuck exits", cmdWatch},
		"status":   {"list tracked containers and their FUSE connections", cmdStatus},
		"doctor":   {"check whether this node can be protected (exit 1 if not)", cmdDoctor},
		"hook":     {"OCI hook: record the container at createRuntime/poststart, forget it at poststop", cmdHook},
		"config":   {"print the effective node configuration (file, environment, flags)", cmdConfig},
		"runtime":  {"runc-compatible runtime wrapper: inject the hooks, rescue a wedged kill", cmdRuntime},
	}
}

func run(ctx context.Context, argv0 string, args []string) int {
	a := &app{stdout: os.Stdout, stderr: os.Stderr, log: logrus.New(), getenv: os.Getenv}
	a.log.SetOutput(os.Stderr)
	a.log.SetFormatter(untrusted.Formatter{Formatter: &logrus.TextFormatter{}})
	if argv0 == runtimeArgv0 {
		return cmdRuntime(ctx, a, args)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(a.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(a.stderr, "fuseguard: unknown command %q (try fuseguard help)\n", args[0])
		return exitUsage
	}
	return cmd.run(ctx, a, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fuseguard COMMAND [flags] [args]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nexit codes: 0 ok, 1 still stuck or failed, 2 usage, 3 no such process or pid reused")
}

// parse parses a command's flags; it returns an exit code when the
// command must stop (help asked, or bad flags).
func (a *app) parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

// setLogging configures the logger; l is valid (config.Config.Validate).
func (a *app) setLogging(l config.Log) {
	if strings.ToLower(l.Format) == "json" {
		a.log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		a.log.SetFormatter(untrusted.Formatter{Formatter: &logrus.TextFormatter{}})
	}
	if lvl, err := logrus.ParseLevel(l.Level); err == nil {
		a.log.SetLevel(lvl)
	}
}

// printJSON writes v to stdout as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// fail prints a one-line error and returns code. Errors quote what a
// container named (paths, ids): the line is escaped.
func (a *app) fail(code int, format string, args ...any) int {
	fmt.Fprintln(a.stderr, "fuseguard: "+untrusted.Line(fmt.Sprintf(format, args...)))
	return code
}
