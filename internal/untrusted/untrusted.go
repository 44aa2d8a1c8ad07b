// Package untrusted makes text that a container controls safe to show an
// operator: process names, mount points, fs types and sources, annotations,
// cgroup paths, and the errors and reasons that quote them.
//
// A container chooses these strings, so they may hold terminal escapes
// (ESC, CSI as U+009B), carriage returns that overwrite a line, newlines
// that forge a log line, invalid UTF-8, and Unicode bidi overrides that
// reorder what is shown. Nothing of that may reach a terminal. JSON output
// keeps the exact value, but encoding/json escapes only C0 controls (and
// U+2028, U+2029): C1 controls, DEL and the bidi and other format
// characters it writes raw, so JSON passes through JSON, which writes
// them as \u escapes.
package untrusted

import (
	"strconv"
	"strings"
	"unicode/utf16"
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
// the message through Line. JSON logs use JSONFormatter.
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

// JSON returns the JSON text b with each unsafe rune (see safe) other than
// JSON's whitespace written as a \u escape, so that the text shows nothing
// a terminal would interpret yet decodes to exactly the same values. It
// returns b itself when there is nothing to rewrite.
//
// Why the rewrite is sound, for b that is JSON text (RFC 8259):
//   - Outside strings, JSON text holds only the structural characters
//     []{}:, , the literals true, false, null, numbers (all printable
//     ASCII) and whitespace (space, tab, LF, CR), which JSON keeps. So
//     every rune it rewrites lies inside a string.
//   - Inside a string every character may be written as \uXXXX (beyond the
//     BMP as a UTF-16 surrogate pair), and decodes to that character
//     (§7). An escape sequence is a backslash followed by ASCII only, so a
//     rewritten rune (C0, DEL or non-ASCII) is never part of one, and the
//     escape written for it is a whole sequence of its own.
//   - A byte that is not UTF-8 is not JSON, but Go's decoder reads it as
//     U+FFFD; JSON writes it as \ufffd, which decodes the same (and what
//     encoding/json writes never holds one: it replaces them with U+FFFD).
//
// A rune that is rewritten can therefore neither change a value nor turn
// valid JSON invalid. FuzzJSON checks both.
func JSON(b []byte) []byte {
	var out []byte // nil until something is rewritten
	done := 0      // b[:done] is in out
	for i := 0; i < len(b); {
		if c := b[i]; c >= 0x20 && c < 0x7f || c == '\t' || c == '\n' || c == '\r' {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if safe(r, size) {
			i += size
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(b)+12)
		}
		out = append(out, b[done:i]...)
		// An invalid byte decodes as RuneError, U+FFFD.
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = appendUnicodeEscape(appendUnicodeEscape(out, r1), r2)
		} else {
			out = appendUnicodeEscape(out, r)
		}
		i += size
		done = i
	}
	if out == nil {
		return b
	}
	return append(out, b[done:]...)
}

// appendUnicodeEscape appends \uXXXX for r <= U+FFFF, in lower-case hex as
// encoding/json writes it.
func appendUnicodeEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// JSONFormatter is logrus's JSONFormatter with its output passed through
// JSON: a log file an operator cats shows no C1 control or bidi override
// that a container put in a field or message, and every value decodes as
// logged. Its zero value is ready to use.
type JSONFormatter struct{ logrus.JSONFormatter }

// Format implements logrus.Formatter.
func (f *JSONFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b, err := f.JSONFormatter.Format(e)
	if err != nil {
		return nil, err
	}
	return JSON(b), nil
}
