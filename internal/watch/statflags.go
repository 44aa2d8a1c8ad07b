package watch

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fuseguard/fuseguard/proc"
)

var errStatFormat = errors.New("malformed /proc/PID/stat")

// exitState extracts the state (field 3) and PF_EXITING (from the flags,
// field 9) of a /proc/PID/stat without allocating: it runs for every
// tracked init every CheckInterval, where proc.ParseStat's full parse
// would cost more than the read.
func exitState(b []byte) (state byte, exiting bool, err error) {
	// comm may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("%w: no comm", errStatFormat)
	}
	rest := b[i+1:]
	field := 2 // the last field seen; comm is field 2
	var flags uint64
	for j := 0; j < len(rest) && field <= 9; {
		for j < len(rest) && isSpace(rest[j]) {
			j++
		}
		if j == len(rest) {
			break
		}
		start := j
		for j < len(rest) && !isSpace(rest[j]) {
			j++
		}
		field++
		tok := rest[start:j]
		switch field {
		case 3:
			if len(tok) != 1 {
				return 0, false, fmt.Errorf("%w: state %q", errStatFormat, tok)
			}
			state = tok[0]
		case 9:
			for _, c := range tok {
				if c < '0' || c > '9' || flags > (1<<63)/10 {
					return 0, false, fmt.Errorf("%w: flags %q", errStatFormat, tok)
				}
				flags = flags*10 + uint64(c-'0')
			}
		}
	}
	if field < 9 {
		return 0, false, fmt.Errorf("%w: %d fields", errStatFormat, field)
	}
	return state, flags&proc.PFExiting != 0, nil
}

// isSpace is ASCII white space, as strings.Fields splits on.
func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// parseRunTime reads the first number of /proc/PID/schedstat: the time
// the task has spent on a CPU, in ns.
func parseRunTime(b []byte) (uint64, bool) {
	var n uint64
	i := 0
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		if n > (1<<64-1)/10-9 {
			return 0, false
		}
		n = n*10 + uint64(b[i]-'0')
	}
	if i == 0 || (i < len(b) && !isSpace(b[i])) {
		return 0, false
	}
	return n, true
}
