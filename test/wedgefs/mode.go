package wedgefs

import (
	"errors"
	"fmt"
)

// ErrUnknownMode is returned (wrapped) by ParseMode for an unknown mode.
var ErrUnknownMode = errors.New("unknown wedgefs mode")

// Mode selects which request, if any, the server never answers.
type Mode string

const (
	// ModeHealthy answers every request.
	ModeHealthy Mode = "healthy"
	// ModeRead never answers a READ of DataFile (opened with direct I/O,
	// so every read(2) reaches the server).
	ModeRead Mode = "read"
	// ModeLookup never answers a LOOKUP of HangName in the root.
	ModeLookup Mode = "lookup"
	// ModeFlush never answers a FLUSH of DataFile: the close(2) of any
	// descriptor of it, including the implicit one at exit.
	ModeFlush Mode = "flush"
)

// Modes lists every mode.
var Modes = []Mode{ModeHealthy, ModeRead, ModeLookup, ModeFlush}

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("%w: %q (want healthy, read, lookup or flush)", ErrUnknownMode, s)
}

// Op is the FUSE opcode name the mode parks ("" for ModeHealthy).
func (m Mode) Op() string {
	switch m {
	case ModeRead:
		return "READ"
	case ModeLookup:
		return "LOOKUP"
	case ModeFlush:
		return "FLUSH"
	}
	return ""
}
