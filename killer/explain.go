package killer

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/untrusted"
)

// Explain writes the diagnosis as the chain an on-call engineer would
// follow by hand: init → the stuck task → the connection → the plan.
// Whatever the container named (comms, fs types, mount points) and the
// reasons and errors that quote it are escaped (package untrusted).
func (d *Diagnosis) Explain(w io.Writer) {
	init := d.Init
	switch {
	case d.InitInZap:
		fmt.Fprintf(w, "init %d (%s) is stuck in zap_pid_ns_processes: it waits for every task of its PID namespace to die\n", init.TID, untrusted.Text(init.Comm))
	case init.Exiting:
		fmt.Fprintf(w, "init %d (%s) is exiting (state %s, %s)\n", init.TID, untrusted.Text(init.Comm), init.State, where(init))
	default:
		fmt.Fprintf(w, "init %d (%s) is not exiting (state %s, %s)\n", init.TID, untrusted.Text(init.Comm), init.State, where(init))
	}
	if len(d.Stuck) == 0 {
		fmt.Fprintln(w, "  no task of the container sleeps uninterruptibly")
	}
	conns := map[string]ConnState{}
	for _, c := range d.Connections {
		conns[c.Conn.String()] = c
	}
	for _, t := range d.Stuck {
		fmt.Fprintf(w, "  → task %d (%s) is %s in %s", t.TID, untrusted.Text(t.Comm), t.State, where(t))
		if len(t.SigPnd) > 0 {
			fmt.Fprintf(w, ", pending %s", strings.Join(t.SigPnd, ","))
		}
		if len(t.ShdPnd) > 0 {
			fmt.Fprintf(w, ", shared pending %s", strings.Join(t.ShdPnd, ","))
		}
		fmt.Fprintf(w, " [%s]\n", t.Blocker)
		switch {
		case t.HasConn:
			c := conns[t.Conn.String()]
			fmt.Fprintf(w, "    → connection %s, %s at %s, %s, waiting %d (found via %s)\n",
				t.Conn, untrusted.Text(c.FSType), untrusted.Text(c.MountPoint), untrusted.Line(class(c)), c.Waiting, untrusted.Line(t.Via))
		case t.Untrusted != "":
			fmt.Fprintf(w, "    → evidence set aside: %s\n", untrusted.Line(t.Untrusted))
		case t.Blocker == BlockerUnknown:
			fmt.Fprintf(w, "    → %s: what it waits on is unknown, no fd evidence\n", untrusted.Line(t.Unreadable))
		case t.Blocker == BlockerFUSEFlush:
			fmt.Fprintln(w, "    → flushing a FUSE file at exit: the file has left the fd table, the record names the candidates")
		case t.Blocker == BlockerFUSERequest:
			fmt.Fprintln(w, "    → waiting on a FUSE request that names no fd (lookup, stat, …): the record names the candidates")
		default:
			fmt.Fprintln(w, "    → not FUSE: reported, never touched")
		}
	}
	for _, c := range d.Connections {
		fmt.Fprintf(w, "  connection %s: %s at %s, %s, waiting %d%s\n", c.Conn, untrusted.Text(c.FSType), untrusted.Text(c.MountPoint), untrusted.Line(class(c)), c.Waiting, liveness(c))
	}
	if len(d.Plan) == 0 {
		fmt.Fprintln(w, "kill would abort nothing")
	}
	for _, a := range d.Plan {
		fmt.Fprintf(w, "kill would abort connection %s (%s at %s): %s\n", a.Conn, untrusted.Text(a.FSType), untrusted.Text(a.MountPoint), untrusted.Line(a.Reason))
	}
	for _, a := range d.Refused {
		fmt.Fprintf(w, "kill would keep connection %s (%s at %s): %s\n", a.Conn, untrusted.Text(a.FSType), untrusted.Text(a.MountPoint), untrusted.Line(a.Reason))
	}
	for _, n := range d.Notes {
		fmt.Fprintf(w, "note: %s\n", untrusted.Line(n))
	}
}

// UnreadableTasks lists the tasks whose kernel stack could not be read, so
// that what they wait on is unknown, one line each: "task TID (comm):
// why", escaped (package untrusted) for a log or a terminal. It is nil for
// a nil diagnosis and when every stack was read.
func (d *Diagnosis) UnreadableTasks() []string {
	if d == nil {
		return nil
	}
	var out []string
	if d.Init.Unreadable != "" && !slices.ContainsFunc(d.Stuck, func(t Task) bool { return t.TID == d.Init.TID }) {
		out = append(out, d.Init.unreadable())
	}
	for _, t := range d.Stuck {
		if t.Unreadable != "" {
			out = append(out, t.unreadable())
		}
	}
	return out
}

// unreadable names t and why its stack could not be read, escaped.
func (t Task) unreadable() string {
	return fmt.Sprintf("task %d (%s): %s", t.TID, untrusted.Text(t.Comm), untrusted.Line(t.Unreadable))
}

// Timeline writes the report's stages in milliseconds since the kill began.
func (r Report) Timeline(w io.Writer) {
	for _, s := range r.Stages {
		line := fmt.Sprintf("%8.1f ms  %-9s %7.1f ms", ms(s.Start), s.Name, ms(s.Duration))
		if s.Err != "" {
			line += "  error: " + untrusted.Line(s.Err)
		}
		fmt.Fprintln(w, line)
	}
	for _, a := range r.Aborted {
		state := "aborted"
		if !a.Done {
			state = "planned (not aborted)"
		}
		fmt.Fprintf(w, "connection %s %s: %s\n", a.Conn, state, untrusted.Line(a.Reason))
	}
	fmt.Fprintf(w, "outcome %s after %.1f ms\n", r.Outcome, ms(r.Total))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func where(t Task) string {
	if len(t.Stack) > 0 {
		chain := []string{}
		for i, f := range t.Stack {
			if i == 3 {
				break
			}
			chain = append(chain, untrusted.Text(f.Function))
		}
		return strings.Join(chain, " ← ")
	}
	if t.Wchan != "" {
		return "wchan " + untrusted.Text(t.Wchan)
	}
	return "kernel stack unreadable"
}

func ownership(c fuseconn.Connection) string {
	switch {
	case c.OwnershipUnknown != "":
		return "ownership unknown"
	case c.Owned:
		return "owned"
	}
	return "shared"
}

// class is a connection's ownership class as diagnose shows it, with why
// it is (not) dedicated to the pod when the policy asked.
func class(c ConnState) string {
	switch {
	case c.Dedicated:
		return "dedicated (" + c.Dedication + ")"
	case c.Dedication != "":
		return ownership(c.Connection) + " (" + c.Dedication + ")"
	}
	return ownership(c.Connection)
}

func liveness(c ConnState) string {
	if !c.Live {
		return " (gone)"
	}
	if c.Err != "" {
		return " (" + untrusted.Line(c.Err) + ")"
	}
	if c.Proven {
		return fmt.Sprintf(" (generation %d, in %s)", c.Gen, c.MountedIn)
	}
	return " (" + c.Unproven + ")"
}
