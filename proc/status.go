package proc

import (
	"fmt"
	"strconv"
	"strings"
)

// Status is /proc/PID/status, the fields fuseguard uses.
type Status struct {
	Name    string
	State   string // one letter
	Tgid    int
	PPid    int
	NSpid   []int // outermost first
	Threads int
	SigPnd  uint64
	ShdPnd  uint64
	SigBlk  uint64
}

// Status reads /proc/PID/status. It reads directly: status waits on no
// lock a task inside execve holds (checked on Linux 6.18), so it is the
// safe source of a task's state, name and parent.
func (fs FS) Status(pid int) (Status, error) {
	b, p, err := fs.read(pid, "status")
	if err != nil {
		return Status{}, err
	}
	st, err := ParseStatus(b)
	if err != nil {
		return Status{}, fmt.Errorf("proc: parse %s: %w", p, err)
	}
	return st, nil
}

// ParseStatus parses the bytes of /proc/PID/status. Unknown lines are
// ignored and every field is optional (kernels and captures differ), but
// at least one known field must be present.
func ParseStatus(b []byte) (Status, error) {
	var (
		st    Status
		known int
		err   error
	)
	for line := range strings.SplitSeq(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch key {
		case "Name":
			// The kernel escapes the name; only the separator tab is not part of it.
			st.Name = strings.TrimPrefix(val, "\t")
		case "State":
			// "S (sleeping)"
			f := strings.Fields(val)
			if len(f) == 0 || len(f[0]) != 1 {
				return Status{}, fmt.Errorf("status: State %.20q: not one letter", val)
			}
			st.State = f[0]
		case "Tgid":
			st.Tgid, err = parseNonNegInt(strings.TrimSpace(val))
		case "PPid":
			st.PPid, err = parseNonNegInt(strings.TrimSpace(val))
		case "NSpid":
			st.NSpid, err = parseIntList(val)
		case "Threads":
			st.Threads, err = parseNonNegInt(strings.TrimSpace(val))
		case "SigPnd":
			st.SigPnd, err = strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		case "ShdPnd":
			st.ShdPnd, err = strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		case "SigBlk":
			st.SigBlk, err = strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		default:
			continue
		}
		if err != nil {
			return Status{}, fmt.Errorf("status: %s: %w", key, err)
		}
		known++
	}
	if known == 0 {
		return Status{}, fmt.Errorf("status: no known field in %d bytes", len(b))
	}
	return st, nil
}

// parseIntList parses whitespace-separated pids, at least one.
func parseIntList(s string) ([]int, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	out := make([]int, len(f))
	for i, v := range f {
		n, err := parseNonNegInt(v)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}
