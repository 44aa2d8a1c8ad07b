package breakdown

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Row is one program run by one process: a runtime command, a hook stage.
type Row struct {
	At   time.Duration // from the start of the measured operation
	Wall time.Duration // until the next exec or the exit
	PID  int
	What string // "fuseguard-runtime create", "runc start", "fuseguard-runtime hook createRuntime"
	// Fuseguard is set for the wrapper's own part and for hooks: the cost
	// a plain runc does not have.
	Fuseguard bool
	Syncs     int
	SyncTime  time.Duration
	Unended   bool // the trace ended before the program did
}

// runcCommands are runc's commands, to tell the command from the values
// of global flags such as --root.
var runcCommands = []string{"create", "start", "delete", "kill", "state", "run", "exec", "pause", "resume",
	"update", "features", "ps", "events", "checkpoint", "restore", "list", "spec", "init"}

// describe names what one exec ran, and whether it is fuseguard's own.
func describe(e Exec) (string, bool) {
	name := filepath.Base(e.Path)
	if len(e.Argv) > 0 && (name == "exe" || strings.HasPrefix(filepath.Base(e.Argv[0]), "fuseguard")) {
		// runc re-execs itself as /proc/self/exe; an older install's wrapper
		// is a link to fuseguard.
		name = filepath.Base(e.Argv[0])
	}
	args := e.Argv
	if len(args) > 0 {
		args = args[1:]
	}
	switch {
	case (name == "fuseguard" || name == "fuseguard-runtime") && len(args) > 0 && args[0] == "hook":
		stage := args[len(args)-1]
		return name + " hook " + stage, true
	case name == "fuseguard-runtime" || name == "runc" || name == "fuseguard":
		for _, a := range args {
			if slices.Contains(runcCommands, a) {
				return name + " " + a, name != "runc"
			}
		}
		return strings.TrimSpace(name + " " + strings.Join(args, " ")), name != "runc"
	}
	return name, false
}

// Rows lists the programs that started within [from, to), in order: the
// runtime's and fuseguard's, and any other program the traced processes
// ran, except runc's own `init` stage and what it execs (the container).
func Rows(procs []*Process, from, to time.Time) []Row {
	var rows []Row
	for _, p := range procs {
		for i, e := range p.Execs {
			if e.At.Before(from) || !e.At.Before(to) {
				continue
			}
			what, fg := describe(e)
			if what == "runc init" || (i > 0 && strings.HasSuffix(rowsWhat(p.Execs[i-1]), " init")) {
				break // the container's own processes
			}
			if what == "strace" {
				continue
			}
			end, unended := p.Exit, p.Exit.IsZero()
			if i+1 < len(p.Execs) {
				end, unended = p.Execs[i+1].At, false
			}
			r := Row{At: e.At.Sub(from), PID: p.PID, What: what, Fuseguard: fg, Unended: unended}
			if !unended {
				r.Wall = end.Sub(e.At)
			}
			for _, s := range p.Syncs {
				if !s.At.Before(e.At) && (unended || s.At.Before(end)) {
					r.Syncs++
					r.SyncTime += s.Duration
				}
			}
			rows = append(rows, r)
		}
	}
	slices.SortFunc(rows, func(a, b Row) int { return int(a.At - b.At) })
	return rows
}

func rowsWhat(e Exec) string { w, _ := describe(e); return w }

// Summary adds up rows: fuseguard's own processes (count and wall time)
// and every file sync.
type Summary struct {
	FuseguardProcs int
	FuseguardWall  time.Duration
	Syncs          int
	SyncTime       time.Duration
}

// Sum returns the summary of rows.
func Sum(rows []Row) Summary {
	var s Summary
	for _, r := range rows {
		if r.Fuseguard {
			s.FuseguardProcs++
			s.FuseguardWall += r.Wall
		}
		s.Syncs += r.Syncs
		s.SyncTime += r.SyncTime
	}
	return s
}

// Write prints a titled table of rows.
func Write(w io.Writer, title string, total time.Duration, rows []Row) {
	fmt.Fprintf(w, "%s: %.1f ms\n", title, ms(total))
	fmt.Fprintf(w, "  %9s %9s %7s  %-32s %s\n", "at ms", "wall ms", "pid", "program", "file syncs")
	for _, r := range rows {
		wall := fmt.Sprintf("%.1f", ms(r.Wall))
		if r.Unended {
			wall = "(running)"
		}
		syncs := ""
		if r.Syncs > 0 {
			syncs = fmt.Sprintf("%d (%.2f ms)", r.Syncs, ms(r.SyncTime))
		}
		mark := " "
		if r.Fuseguard {
			mark = "*"
		}
		fmt.Fprintf(w, "  %9.1f %9s %7d %s%-31s %s\n", ms(r.At), wall, r.PID, mark, r.What, syncs)
	}
	s := Sum(rows)
	fmt.Fprintf(w, "  * fuseguard's own: %d processes, %.1f ms wall in all; file syncs: %d (%.2f ms)\n",
		s.FuseguardProcs, ms(s.FuseguardWall), s.Syncs, ms(s.SyncTime))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
