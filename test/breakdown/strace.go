// Package breakdown turns strace logs of runtime invocations into a
// per-process timeline: which program each process ran (a runtime command,
// a hook stage), when, for how long, and how much of it went to file
// syncs. It backs the per-call breakdown that `make bench` prints.
package breakdown

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Exec is one successful execve of a process.
type Exec struct {
	At   time.Time
	Path string
	Argv []string
}

// Process is what a trace shows of one pid.
type Process struct {
	PID   int
	Execs []Exec
	// Exit is when the process exited; zero when the trace ended first.
	Exit time.Time
	// Syncs are its fsync, fdatasync, syncfs and sync_file_range calls.
	Syncs []Sync
}

// Sync is one file sync: when it started and how long it took.
type Sync struct {
	At       time.Time
	Duration time.Duration
}

// Program is the base name of the last program the process ran.
func (p *Process) Program() string {
	if len(p.Execs) == 0 {
		return ""
	}
	return filepath.Base(p.Execs[len(p.Execs)-1].Path)
}

// line matches `PID SECONDS.MICROS rest` of strace -f -ttt.
var line = regexp.MustCompile(`^(\d+)\s+(\d+)\.(\d{6})\s+(.*)$`)

// duration matches the -T suffix ` <0.000123>`.
var duration = regexp.MustCompile(`<(\d+\.\d+)>$`)

var syncCalls = []string{"fsync(", "fdatasync(", "syncfs(", "sync_file_range("}

// Parse reads one strace log written with -f -ttt -T (and -o FILE, so
// every line starts with the thread's id), tracing at least execve and
// clone/clone3 (to tell a process's threads from its children).
// Unfinished and resumed syscalls are joined; a failed execve is ignored.
func Parse(r io.Reader) ([]*Process, error) {
	procs := map[int]*Process{}
	group := map[int]int{} // thread id → its process's id
	tgid := func(tid int) int {
		if g, ok := group[tid]; ok {
			return g
		}
		return tid
	}
	get := func(tid int) *Process {
		pid := tgid(tid)
		p := procs[pid]
		if p == nil {
			p = &Process{PID: pid}
			procs[pid] = p
		}
		return p
	}
	type call struct {
		at   time.Time
		text string
		// superseded: the exec succeeded (the thread took over the
		// process), whatever strace prints as its result.
		superseded bool
	}
	pending := map[int]call{} // tid → the start of its unfinished call
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		tid, _ := strconv.Atoi(m[1])
		sec, _ := strconv.ParseInt(m[2], 10, 64)
		usec, _ := strconv.ParseInt(m[3], 10, 64)
		at := time.Unix(sec, usec*1000)
		rest := m[4]
		if before, ok := strings.CutSuffix(rest, " <unfinished ...>"); ok {
			pending[tid] = call{at: at, text: before}
			continue
		}
		if strings.HasPrefix(rest, "<... ") {
			// "<... execve resumed>, …) = 0 <0.001>": the call's name and
			// arguments are in the unfinished half, and so is its start.
			_, tail, _ := strings.Cut(rest, "resumed>")
			c := pending[tid]
			delete(pending, tid)
			rest, at = c.text+tail, c.at
			if c.superseded {
				rest = c.text + ") = 0"
			}
		}
		p := get(tid)
		switch {
		case strings.HasPrefix(rest, "+++ superseded by execve in pid "):
			// A thread exec'd: it took the leader's id, and its pending
			// execve resumes under that id.
			other, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rest, "+++ superseded by execve in pid "), " +++"))
			if c, ok := pending[other]; ok {
				c.superseded = true
				pending[tid] = c
				delete(pending, other)
			}
		case strings.HasPrefix(rest, "+++ exited") || strings.HasPrefix(rest, "+++ killed"):
			if tgid(tid) == tid {
				p.Exit = at
			}
		case strings.HasPrefix(rest, "execve("):
			if strings.Contains(rest, ") = -1") || strings.Contains(rest, ") = ?") {
				continue
			}
			path, argv, err := execArgs(rest)
			if err != nil {
				return nil, fmt.Errorf("pid %d: %w", tid, err)
			}
			p.Execs = append(p.Execs, Exec{At: at, Path: path, Argv: argv})
		case strings.HasPrefix(rest, "clone") || strings.HasPrefix(rest, "fork") || strings.HasPrefix(rest, "vfork"):
			if d := cloned.FindStringSubmatch(rest); d != nil && strings.Contains(rest, "CLONE_THREAD") {
				child, _ := strconv.Atoi(d[1])
				group[child] = tgid(tid)
			}
		default:
			for _, c := range syncCalls {
				if strings.HasPrefix(rest, c) {
					sy := Sync{At: at}
					if d := duration.FindStringSubmatch(rest); d != nil {
						s, _ := strconv.ParseFloat(d[1], 64)
						sy.Duration = time.Duration(s * float64(time.Second))
					}
					p.Syncs = append(p.Syncs, sy)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]*Process, 0, len(procs))
	for _, p := range procs {
		if len(p.Execs) > 0 || len(p.Syncs) > 0 {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *Process) int { return a.start().Compare(b.start()) })
	return out, nil
}

// cloned matches the new task's id that clone, clone3, fork and vfork
// return.
var cloned = regexp.MustCompile(`\) = (\d+)(?: <[0-9.]+>)?$`)

// start is the process's first exec, or its exit when it never exec'd.
func (p *Process) start() time.Time {
	if len(p.Execs) > 0 {
		return p.Execs[0].At
	}
	return p.Exit
}

// ParseFiles parses every strace log matching glob into one process list,
// ordered by first exec.
func ParseFiles(glob string) ([]*Process, error) {
	files, err := filepath.Glob(glob)
	if err != nil {
		return nil, err
	}
	var all []*Process
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		ps, err := Parse(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		all = append(all, ps...)
	}
	slices.SortFunc(all, func(a, b *Process) int { return a.start().Compare(b.start()) })
	return all, nil
}

// execArgs takes the path and argv out of `execve("/p", ["a", "b"], …`.
// strace quotes them as C strings; argv may be abbreviated ("..."), which
// only loses trailing arguments.
func execArgs(call string) (string, []string, error) {
	s := strings.TrimPrefix(call, "execve(")
	path, s, err := cString(s)
	if err != nil {
		return "", nil, fmt.Errorf("execve path: %w", err)
	}
	s = strings.TrimPrefix(s, ", [")
	var argv []string
	for strings.HasPrefix(s, `"`) {
		var a string
		a, s, err = cString(s)
		if err != nil {
			return "", nil, fmt.Errorf("execve argv: %w", err)
		}
		argv = append(argv, a)
		s = strings.TrimPrefix(s, ", ")
	}
	return path, argv, nil
}

// cString reads one strace-quoted string at the start of s (possibly
// followed by "..." when strace cut it) and returns it and the rest.
func cString(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, fmt.Errorf("no string at %.20q", s)
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				// strace's octal escapes are Go's too; anything else is
				// kept raw, it is only shown.
				v = s[1:i]
			}
			return v, strings.TrimPrefix(s[i+1:], "..."), nil
		}
	}
	return "", s, fmt.Errorf("unterminated string %.20q", s)
}
