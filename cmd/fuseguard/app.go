package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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

// newApp returns the app of a process: its standard streams and
// environment, logging text to stderr.
func newApp() *app {
	a := &app{stdout: os.Stdout, stderr: os.Stderr, log: logrus.New(), getenv: os.Getenv}
	a.log.SetOutput(os.Stderr)
	a.log.SetFormatter(untrusted.Formatter{Formatter: &logrus.TextFormatter{}})
	return a
}
