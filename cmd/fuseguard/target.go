package main

import (
	"errors"
	"flag"
	"strconv"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// allowSharedUsage is the help of --allow-shared-fstype (kill, diagnose,
// watch). It names no example on purpose: the textbook shared daemons
// (lxcfs) are exactly the ones never to allow.
const allowSharedUsage = "fs `TYPE` (as diagnose reports it) whose shared connections may be aborted; only for a daemon that serves this one container: an abort fails every request on that connection, the host's and other containers' included, and a stuck task's fd on it is no proof it waits there; repeatable"

// targetFlags are the flags kill and diagnose share that name no
// configuration key.
type targetFlags struct {
	startTime uint64
	id        string
	dryRun    bool
	json      bool
}

// bind registers the flags kill and diagnose share: t's, and those of the
// configuration's state directory, timeouts and policy on c.
func (t *targetFlags) bind(fs *flag.FlagSet, c *config.Config) {
	fs.Uint64Var(&t.startTime, "start-time", 0, "expected start time of PID (field 22 of /proc/PID/stat); refuse a reused pid")
	fs.StringVar(&t.id, "id", "", "container id whose record to use (default: the record whose init is PID, if any)")
	bindStateDir(fs, c)
	bindTimeouts(fs, c)
	bindPolicy(fs, c)
	fs.BoolVar(&t.dryRun, "dry-run", false, "report what would be aborted, abort nothing")
	fs.BoolVar(&t.json, "json", false, "print the result as JSON")
}

// resolve turns the positional PID, the flags and the configuration into a
// target and options.
func (t *targetFlags) resolve(a *app, c config.Config, args []string) (killer.Target, killer.Options, int, error) {
	if len(args) != 1 {
		return killer.Target{}, killer.Options{}, exitUsage, errors.New("expects exactly one PID")
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 {
		return killer.Target{}, killer.Options{}, exitUsage, errors.New("PID must be a positive integer, got " + strconv.Quote(args[0]))
	}
	p := proc.NewFS("")
	if err := killer.CheckNamespaceInit(p, pid); err != nil {
		code := exitFailure
		if errors.Is(err, killer.ErrNoTarget) {
			code = exitNoTarget
		}
		return killer.Target{}, killer.Options{}, code, err
	}
	opts := c.KillerOptions()
	opts.Policy.DryRun = t.dryRun
	opts.Proc = p
	opts.Log = a.log
	store := record.NewStore(c.StateDir)
	switch {
	case t.id != "":
		rec, err := store.Find(record.Query{ID: t.id, PID: pid})
		if err != nil {
			return killer.Target{}, killer.Options{}, exitFailure, err
		}
		opts.Record = rec
	default:
		if rec, err := store.Find(record.Query{PID: pid, StartTime: t.startTime}); err == nil {
			opts.Record = rec
		}
	}
	if opts.Record != nil && t.startTime == 0 {
		t.startTime = opts.Record.InitStartTime
	}
	if rec := opts.Record; rec != nil && rec.InitPID == pid && rec.InitStartTime == t.startTime {
		// The record's cgroup too: it proves init when its start time
		// cannot be read (see killer.Open).
		return killer.RecordTarget(rec), opts, 0, nil
	}
	return killer.Target{PID: pid, StartTime: t.startTime}, opts, 0, nil
}

// targetExit maps a killer error to an exit code.
func targetExit(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, killer.ErrNoTarget), errors.Is(err, killer.ErrStaleTarget):
		return exitNoTarget
	default:
		return exitFailure
	}
}
