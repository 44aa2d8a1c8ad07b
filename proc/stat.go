package proc

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// PFExiting is the PF_EXITING bit of the flags field (9) of /proc/PID/stat.
const PFExiting = 0x00000004

// Stat is /proc/PID/stat, the fields fuseguard uses.
type Stat struct {
	PID       int
	Comm      string
	State     string // one letter: R S D Z T t X I …
	PPID      int
	Flags     uint   // field 9, PF_* flags
	StartTime uint64 // field 22, clock ticks since boot
}

// Exiting reports PF_EXITING.
func (s Stat) Exiting() bool { return s.Flags&PFExiting != 0 }

// Stat reads /proc/PID/stat. On Linux 6.18 the read sleeps behind a task
// inside execve (do_task_stat waits on a lock the exec holds), so it is
// bounded by ctx: ErrReadTimeout. Status, which never waits so, has the
// state and the parent too.
func (fs FS) Stat(ctx context.Context, pid int) (Stat, error) {
	b, p, err := fs.readBounded(ctx, pid, false, "stat")
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("proc: parse %s: %w", p, err)
	}
	return st, nil
}

// ParseStat parses the bytes of /proc/PID/stat.
func ParseStat(b []byte) (Stat, error) {
	// comm is printed raw between parentheses and may itself contain spaces,
	// '(' and ')': the pid ends at the first '(' and comm at the last ')'.
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open || b[open-1] != ' ' {
		return Stat{}, fmt.Errorf("stat: no \"pid (comm)\" in %.40q", b)
	}
	var st Stat
	var err error
	if st.PID, err = parseNonNegInt(string(b[:open-1])); err != nil {
		return Stat{}, fmt.Errorf("stat: field 1 (pid): %w", err)
	}
	st.Comm = string(b[open+1 : closing])

	// rest[i] is field i+3.
	rest := strings.Fields(string(b[closing+1:]))
	if len(rest) < 20 {
		return Stat{}, fmt.Errorf("stat: %d fields after comm, want at least 20", len(rest))
	}
	if st.State = rest[0]; len(st.State) != 1 {
		return Stat{}, fmt.Errorf("stat: field 3 (state) %.20q: not one letter", st.State)
	}
	if st.PPID, err = parseNonNegInt(rest[1]); err != nil {
		return Stat{}, fmt.Errorf("stat: field 4 (ppid): %w", err)
	}
	flags, err := strconv.ParseUint(rest[6], 10, 0)
	if err != nil {
		return Stat{}, fmt.Errorf("stat: field 9 (flags): %w", err)
	}
	st.Flags = uint(flags)
	if st.StartTime, err = strconv.ParseUint(rest[19], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("stat: field 22 (starttime): %w", err)
	}
	return st, nil
}

// parseNonNegInt parses a decimal pid-like number.
func parseNonNegInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return n, nil
}
