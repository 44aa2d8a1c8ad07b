package main

import (
	"bytes"
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
	a.log.SetFormatter(logFormatter(l.Format))
	if lvl, err := logrus.ParseLevel(l.Level); err == nil {
		a.log.SetLevel(lvl)
	}
}

// logFormatter returns the formatter of a log format, "json" or text:
// either way, nothing a container named reaches a terminal unescaped.
func logFormatter(format string) logrus.Formatter {
	if strings.ToLower(format) == "json" {
		return &untrusted.JSONFormatter{}
	}
	return untrusted.Formatter{Formatter: &logrus.TextFormatter{}}
}

// printJSON writes v to stdout as indented JSON, with the C1 and bidi
// controls that encoding/json leaves raw \u-escaped (untrusted.JSON).
func (a *app) printJSON(v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := a.stdout.Write(untrusted.JSON(b.Bytes()))
	return err
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
	a.log.SetFormatter(logFormatter("text"))
	return a
}
