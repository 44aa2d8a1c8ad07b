package untrusted

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

func TestText(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"sh", "sh"},
		{"/mnt/my files", "/mnt/my files"},
		{"fuse.sshfs", "fuse.sshfs"},
		{"user@host:/srv/a-b_c", "user@host:/srv/a-b_c"},
		{"données/日本語", "données/日本語"},
		{`say "hi"`, `say "hi"`},
		{"evil\x1b[2J", `"evil\x1b[2J"`},
		{"a\nb", `"a\nb"`},
		{"a\rb", `"a\rb"`},
		{"bell\a", `"bell\a"`},
		{"del\x7f", `"del\x7f"`},
		{"csi\u009b31m", `"csi\u009b31m"`},
		{"raw c1 \x9b", `"raw c1 \x9b"`},
		{"bad \xff utf8", `"bad \xff utf8"`},
		{"rlo\u202egnp.exe", `"rlo\u202egnp.exe"`},
		{"isolate\u2067x", `"isolate\u2067x"`},
		{"lrm\u200e", `"lrm\u200e"`},
		{"line\u2028sep", `"line\u2028sep"`},
		{`back\slash`, `"back\\slash"`},
		{`"\x1b"`, `"\"\\x1b\""`}, // a plain string that looks quoted is quoted
	}
	for _, tt := range tests {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %s, want %s", tt.in, got, tt.want)
		}
		assertSafe(t, Text(tt.in))
	}
}

func TestLine(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"task 7 (sh) waits on it", "task 7 (sh) waits on it"},
		{`task 7 ("a\x1b") waits`, `task 7 ("a\x1b") waits`}, // already safe: unchanged
		{"mount at /m\x1b]0;pwned\a", `mount at /m\x1b]0;pwned\a`},
		{"two\nlines", `two\nlines`},
		{"c1 \u0085 and \x85", `c1 \u0085 and \x85`},
		{"bidi \u202d", `bidi \u202d`},
	}
	for _, tt := range tests {
		if got := Line(tt.in); got != tt.want {
			t.Errorf("Line(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestFormatter: a coloured text log line keeps no control byte of a
// message or a field, whatever the container put in them.
func TestFormatter(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetFormatter(Formatter{&logrus.TextFormatter{ForceColors: true}})
	log.WithField("mount_point", "/m\x1b[31m\nfake=line").Warn("cannot read /m\x1b[2J\r\u202e")
	out := buf.String()
	// The formatter's own colour codes are the only ESCs allowed.
	stripped := strings.NewReplacer("\x1b[33m", "", "\x1b[0m", "").Replace(strings.TrimSuffix(out, "\n"))
	assertSafe(t, stripped)
	if !strings.Contains(out, `cannot read /m\x1b[2J\r\u202e`) || !strings.Contains(out, `"/m\x1b[31m\nfake=line"`) {
		t.Errorf("log line %q does not show the escaped text", out)
	}
}

// assertSafe fails when s holds anything a terminal would interpret.
func assertSafe(t testing.TB, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("%q is not valid UTF-8", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			t.Fatalf("%q holds %U", s, r)
		}
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"sh", "a\x1b[2Jb", "\xff\xfe", "\u202e", `\x1b`, "\u009b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Text(s)
		assertSafe(t, q)
		if q != s {
			if !strings.Contains(q, `\`) {
				t.Fatalf("Text(%q) = %s: escaped without a backslash", s, q)
			}
			if u, err := strconv.Unquote(q); err != nil || u != s {
				t.Fatalf("Text(%q) = %s does not unquote back: %q, %v", s, q, u, err)
			}
		} else if strings.Contains(s, `\`) {
			t.Fatalf("Text(%q) kept a backslash plain", s)
		}
		l := Line(s)
		assertSafe(t, l)
		if Line(l) != l {
			t.Fatalf("Line is not idempotent on %q", s)
		}
	})
}
