// Package untrusted makes text that a container controls safe to show an
// operator: process names, mount points, fs types and sources, annotations,
// cgroup paths, and the errors and reasons that quote them.
//
// A container chooses these strings, so they may hold terminal escapes
// (ESC, CSI as U+009B), carriage returns that overwrite a line, newlines
// that forge a log line, invalid UTF-8, and Unicode bidi overrides that
// reorder what is shown. Nothing of that may reach a terminal. JSON output
// needs none of this: encoding/json escapes control characters and keeps
// the value exact.
package untrusted

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// Text returns a name for human output: unchanged when it is plainly
// printable, else Go-quoted ("evil\x1b[2J"). A plain result never holds a
// backslash and a quoted one always does, so the two cannot be confused.
func Text(s string) string {
	if !needsEscape(s, true) {
		return s
	}
	return strconv.Quote(s)
}

// Line returns free text (a message, a reason, an error that quotes names)
// with each unsafe rune replaced by its Go escape (\n, \x1b, \u202e) and
// everything else, backslashes included, kept as is: text that is already
// safe, such as a reason built from Text'ed names, comes back unchanged.
func Line(s string) string {
	if !needsEscape(s, false) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if safe(r, size) {
			b.WriteString(s[i : i+size])
		} else {
			// Quote of one rune or byte, without the quotes.
			q := strconv.Quote(s[i : i+size])
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// needsEscape reports whether s holds an unsafe rune, or, for a name, a
// backslash (which would make a plain name look like a quoted one).
func needsEscape(s string, name bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			if name && c == '\\' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !safe(r, size) {
			return true
		}
		i += size
	}
	return false
}

// safe reports whether a decoded rune may be shown as is. strconv.IsPrint
// is false for every control (C0, DEL, C1), for format characters (the
// bidi embeddings, overrides and isolates U+202A–U+202E, U+2066–U+2069,
// U+200E, U+200F, U+061C are all category Cf), for line and paragraph
// separators and for unassigned code points; invalid UTF-8 decodes as
// RuneError of size 1.
func safe(r rune, size int) bool {
	if r == utf8.RuneError && size == 1 {
		return false
	}
	return strconv.IsPrint(r)
}

// Formatter makes a logrus formatter safe for a terminal. logrus's
// TextFormatter already quotes every field value that holds anything but
// [A-Za-z0-9-._/@^+] (strconv.Quote, which escapes all of the above), but
// it prints the message raw when it colours its output: Formatter passes
// the message through Line. JSON formatters need no wrapper.
type Formatter struct{ logrus.Formatter }

// Format implements logrus.Formatter.
func (f Formatter) Format(e *logrus.Entry) ([]byte, error) {
	// logrus trims one trailing newline itself; it is not an escape.
	if safeMsg := Line(strings.TrimSuffix(e.Message, "\n")); safeMsg != e.Message {
		c := *e
		c.Message = safeMsg
		return f.Formatter.Format(&c)
	}
	return f.Formatter.Format(e)
}
