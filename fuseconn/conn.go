package fuseconn

import (
	"fmt"
	"strconv"
)

// String is the decimal form, the directory name under fusectl.
func (c ConnID) String() string { return strconv.FormatUint(uint64(c), 10) }

// maxConnIDDigits is len("4294967295").
const maxConnIDDigits = 10

// ParseConnID accepts only decimal digits (it becomes a path element).
func ParseConnID(s string) (ConnID, error) {
	// strconv alone would accept "+1"; the id becomes a path element, so
	// insist on plain ASCII digits.
	if len(s) == 0 || len(s) > maxConnIDDigits {
		return 0, fmt.Errorf("%w: %q", ErrInvalidConnID, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q", ErrInvalidConnID, s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrInvalidConnID, s, err)
	}
	return ConnID(n), nil
}
