package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/internal/hook"
	"github.com/fuseguard/fuseguard/internal/obs"
	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/record"
)

// envFailClosed makes a hook's internal error fail the runtime's operation.
const envFailClosed = "FUSEGUARD_FAIL_CLOSED"

// cmdHook is `fuseguard hook [flags] STAGE`, run by the container runtime
// with the OCI State on stdin. Fail open: an internal error is logged and
// the hook exits 0 unless fail-closed is configured.
func cmdHook(ctx context.Context, a *app, args []string) int {
	var failClosed, noWatcher bool
	a.failOpen = true
	fs, c, code, ok := a.command("hook", args, func(fs *flag.FlagSet, c *config.Config) {
		bindStateDir(fs, c)
		fs.BoolVar(&failClosed, "fail-closed", false, "exit 1 on an internal error (default: log it and exit 0; also $"+envFailClosed+"=1)")
		fs.Var((*durationFlag)(&c.Timeouts.Hook), "timeout", "bound on the whole hook run (timeouts.hook)")
		fs.BoolVar(&noWatcher, "no-watcher", false, "at createRuntime/poststart, do not start the node watcher when none runs (also $"+envWatcher+"=0)")
		fs.Usage = func() {
			fmt.Fprintf(a.stderr, "usage: fuseguard hook [flags] %s < state.json\n", oci.Stages())
			fs.PrintDefaults()
		}
	})
	if !ok {
		return code
	}
	if fs.NArg() != 1 {
		return a.fail(exitUsage, "hook: expects exactly one stage, one of %v", oci.Stages())
	}
	stage, err := oci.ParseStage(fs.Arg(0))
	if err != nil {
		return a.fail(exitUsage, "hook: %v", err)
	}
	if fc, _ := strconv.ParseBool(a.getenv(envFailClosed)); fc {
		failClosed = true
	}
	store := record.NewStore(c.StateDir)
	log, closeLog := stateLog(a, store.Dir, "hook.log", a.stderr)
	defer closeLog()
	log.SetLevel(a.log.GetLevel())
	entry := log.WithFields(logrus.Fields{"stage": stage, "pid": os.Getpid()})
	if a.configErr != nil {
		if failClosed {
			entry.WithError(a.configErr).Error("hook failed (fail-closed)")
			return exitFailure
		}
		entry.WithError(a.configErr).Error("configuration not read: running with the defaults (fail open)")
	}

	// hook.Run parents its span itself (annotation, else TRACEPARENT).
	_, tr, shutdown := a.tracing(ctx, entry)
	defer shutdown()
	ctx, cancel := context.WithTimeout(ctx, c.Timeouts.Hook.Std())
	defer cancel()
	begin := time.Now()
	id, rec, err := runHook(ctx, a, stage, store, entry, tr)
	if id != "" {
		// poststop has no record to name the container by.
		entry = entry.WithField("id", id)
	}
	// After the record, so that a new watcher's first scan finds it.
	if (stage == oci.CreateRuntime || stage == oci.Poststart) && watcherWanted(a, noWatcher, entry) {
		ensureWatcher(ctx, store.Dir, a.configFile, entry)
	}
	if err != nil {
		if failClosed {
			entry.WithError(err).Error("hook failed (fail-closed)")
			return exitFailure
		}
		entry.WithError(err).Error("hook failed (fail open: exit 0)")
		return exitOK
	}
	if rec != nil {
		entry = entry.WithFields(logrus.Fields{"init_pid": rec.InitPID, "connections": len(rec.Connections)})
	}
	entry.WithField("ms", float64(time.Since(begin))/float64(time.Millisecond)).Info("hook done")
	return exitOK
}

// runHook reads the State and runs the stage, bounded by ctx even if
// stdin never ends. It returns the container's id once the State is read.
func runHook(ctx context.Context, a *app, stage oci.Stage, store record.Store, log logrus.FieldLogger, tr trace.Tracer) (string, *record.Record, error) {
	type result struct {
		id  string
		rec *record.Record
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := oci.ReadState(os.Stdin, stage)
		if err != nil {
			done <- result{err: err}
			return
		}
		rec, err := hook.Run(ctx, stage, st, hook.Options{Store: store, Log: log, Tracer: tr, Getenv: a.getenv})
		done <- result{st.ID, rec, err}
	}()
	select {
	case r := <-done:
		return r.id, r.rec, r.err
	case <-ctx.Done():
		return "", nil, fmt.Errorf("hook %s: %w", stage, ctx.Err())
	}
}

// stateLog returns a JSON logger writing to <dir>/name, opened on the first
// entry (so a command that logs nothing touches no file), and to also when
// not nil. The file is size-capped and rotated (obs.LogFile) and refused
// when dir is not private (record.CheckStateDir) or name is a symlink;
// the entries then go to also, or to a.stderr, after one line saying why.
// The JSON is escaped for a terminal (untrusted.JSONFormatter): an
// operator cats these files, and the hook's entries are copied to stderr.
func stateLog(a *app, dir, name string, also io.Writer) (*logrus.Logger, func()) {
	lf := &lazyFile{dir: dir, name: name, errOut: a.stderr}
	l := logrus.New()
	l.SetFormatter(logFormatter("json"))
	w := io.Writer(lf)
	if also != nil {
		w = io.MultiWriter(lf, also)
	} else {
		lf.fallback = a.stderr
	}
	l.SetOutput(w)
	return l, lf.close
}

// lazyFile opens a state-dir log file on the first write; it never fails
// a write (a log must not fail the command), falling back to fallback when
// the file cannot be opened.
type lazyFile struct {
	dir, name string
	fallback  io.Writer // the entries, when the file cannot be opened
	errOut    io.Writer // why it cannot, once
	once      sync.Once
	f         *obs.LogFile
}

func (l *lazyFile) Write(p []byte) (int, error) {
	l.once.Do(func() {
		err := record.EnsureStateDir(l.dir)
		if err == nil {
			l.f, err = obs.OpenLogFile(filepath.Join(l.dir, l.name), 0, 0)
		}
		if err != nil {
			fmt.Fprintf(l.errOut, "fuseguard: %s not written: %v\n", l.name, err)
		}
	})
	if l.f != nil {
		if _, err := l.f.Write(p); err == nil {
			return len(p), nil
		}
	}
	if l.fallback != nil {
		_, _ = l.fallback.Write(p)
	}
	return len(p), nil
}

func (l *lazyFile) close() {
	if l.f != nil {
		l.f.Close()
	}
}

// errIs reports whether err wraps any of targets.
func errIs(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
