package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/untrusted"
	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// cmdStatus lists the tracked containers and their FUSE connections.
func cmdStatus(ctx context.Context, a *app, args []string) int {
	var asJSON bool
	fs, c, code, ok := a.command("status", args, func(fs *flag.FlagSet, c *config.Config) {
		bindStateDir(fs, c)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if !ok {
		return code
	}
	if fs.NArg() != 0 {
		return a.fail(exitUsage, "status: takes no arguments")
	}
	st := watch.ReadStatus(ctx, proc.NewFS(""), record.NewStore(c.StateDir), fuseconn.NewControl(""))
	if asJSON {
		if err := a.printJSON(st); err != nil {
			return a.fail(exitFailure, "status: %v", err)
		}
	} else {
		printStatus(a.stdout, st)
	}
	for _, e := range st.Errors {
		a.log.Warn(e)
	}
	return exitOK
}

func printStatus(w io.Writer, st watch.Status) {
	switch st.WatcherPID {
	case 0:
		fmt.Fprintf(w, "watcher: not running (state dir %s)\n", untrusted.Text(st.StateDir))
	case -1:
		fmt.Fprintf(w, "watcher: running, pid unknown (state dir %s)\n", untrusted.Text(st.StateDir))
	default:
		fmt.Fprintf(w, "watcher: running, pid %d (state dir %s)\n", st.WatcherPID, untrusted.Text(st.StateDir))
	}
	if len(st.Containers) == 0 {
		fmt.Fprintln(w, "no tracked containers")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tINIT\tSTATE\tCONN\tFSTYPE\tOWNED\tLIVE\tWAITING\tMOUNTPOINT")
	for _, c := range st.Containers {
		// Everything a container named is escaped: a tab or newline
		// would also break the table.
		id := untrusted.Text(c.ID)
		state := c.Init
		if c.InitState != "" {
			state += " (" + c.InitState + ")"
		}
		state = untrusted.Text(state)
		if len(c.Connections) == 0 {
			fmt.Fprintf(tw, "%s\t%d\t%s\t-\t-\t-\t-\t-\t-\n", id, c.InitPID, state)
			continue
		}
		for _, cn := range c.Connections {
			waiting := "?" // unknown: not live, or unreadable
			if cn.Live {
				waiting = strconv.Itoa(cn.Waiting)
			}
			owned := strconv.FormatBool(cn.Owned)
			if cn.OwnershipUnknown != "" {
				owned = "unknown"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%t\t%s\t%s\n",
				id, c.InitPID, state, cn.Conn, untrusted.Text(cn.FSType), owned, cn.Live, waiting, untrusted.Text(cn.MountPoint))
		}
	}
	tw.Flush()
	printWatcherState(w, st)
}

// printWatcherState prints what the running watcher published: its caps
// and every container it has something to say about.
func printWatcherState(w io.Writer, st watch.Status) {
	ws := st.Watcher
	if ws == nil {
		return
	}
	fmt.Fprintf(w, "watcher: tracking %d of at most %d records, %d not tracked; rescues: %d running (at most %d), %d queued, %d past their deadline\n",
		ws.Tracked, ws.MaxTracked, ws.NotTracked, ws.RescuesRunning, ws.MaxRescues, ws.RescuesQueued, ws.RescuesAbandoned)
	now := time.Now()
	for _, c := range st.Containers {
		cw := c.Watch
		if cw == nil {
			continue
		}
		if cw.NotTracked {
			fmt.Fprintf(w, "%s: not tracked (too many records): a stuck exit would not be rescued\n", c.ID)
		}
		switch cw.Rescue {
		case watch.RescueBackoff:
			fmt.Fprintf(w, "%s: rescue failed %d time(s), next in %s (backoff %s): %q\n",
				c.ID, cw.Failures, max(cw.NextRescue.Sub(now), 0).Round(time.Millisecond), cw.Backoff, cw.LastError)
		case "":
		default:
			fmt.Fprintf(w, "%s: rescue %s (%d failed before)\n", c.ID, cw.Rescue, cw.Failures)
		}
		if cw.MountTableError != "" {
			fmt.Fprintf(w, "%s: mount table not read, record kept as is: %q\n", c.ID, cw.MountTableError)
		}
		if cw.ConnectionsDropped > 0 {
			fmt.Fprintf(w, "%s: %d FUSE connection(s) not recorded: record full\n", c.ID, cw.ConnectionsDropped)
		}
	}
}
