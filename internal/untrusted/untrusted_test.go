package untrusted

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
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

func TestJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", `{"msg":"ok","n":1}`, `{"msg":"ok","n":1}`},
		{"utf-8 kept", `{"m":"é 日本 😀 \ufffd"}`, `{"m":"é 日本 😀 \ufffd"}`},
		{"json whitespace kept", "{\n\t\"a\" :\r 1}\n", "{\n\t\"a\" :\r 1}\n"},
		{"escapes kept", `{"m":"a\u009b\n\\\"\u202e"}`, `{"m":"a\u009b\n\\\"\u202e"}`},
		{"c1 csi", "{\"m\":\"csi \u009b31m\"}", `{"m":"csi \u009b31m"}`},
		{"c1 nel", "{\"m\":\"\u0085\"}", `{"m":"\u0085"}`},
		{"del", "{\"m\":\"\x7f\"}", `{"m":"\u007f"}`},
		{"bidi override", "{\"m\":\"rlo\u202egnp.exe\"}", `{"m":"rlo\u202egnp.exe"}`},
		{"bidi isolates and marks", "{\"m\":\"\u2066\u2069\u200e\u200f\u061c\"}", `{"m":"\u2066\u2069\u200e\u200f\u061c"}`},
		{"after an escaped backslash", "{\"m\":\"\\\\\u202e\"}", `{"m":"\\\u202e"}`},
		{"in a key", "{\"k\u202e\":1}", `{"k\u202e":1}`},
		{"beyond the BMP", "{\"m\":\"tag\U000E0001\"}", `{"m":"tag\udb40\udc01"}`},
		{"invalid utf-8", "{\"m\":\"bad \xff\xc3\"}", `{"m":"bad \ufffd\ufffd"}`},
		{"raw C0 (not JSON)", "{\"m\":\"\x1b[2J\"}", `{"m":"\u001b[2J"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(JSON([]byte(tt.in)))
			if got != tt.want {
				t.Fatalf("JSON(%q) = %s, want %s", tt.in, got, tt.want)
			}
			assertSafe(t, strings.NewReplacer("\n", "", "\t", "", "\r", "").Replace(got))
			if json.Valid([]byte(tt.in)) {
				assertSameJSON(t, []byte(tt.in), []byte(got))
			}
		})
	}
	// Nothing to rewrite: the same slice, no copy.
	in := []byte(`{"m":"日本"}`)
	if out := JSON(in); &out[0] != &in[0] {
		t.Error("JSON copied a text it did not change")
	}
}

// hostileValues are container-chosen names for the JSON formatter tests.
var hostileValues = []string{
	"",
	"/mnt/data",
	"données/日本語",
	"csi\u009b31m",
	"raw c1 \x9b and \xc2",
	"/m\n\x1b]0;pwned\a\u202efdp.exe",
	"\u2066isolate\u2069 \u200e\u200f\u061c",
	"bad \xff\xfe utf8",
	"del\x7f",
	"tag\U000E0041",
	`back\slash "quoted"`,
}

// TestJSONFormatter: every field and the message of a JSON log line decode
// to exactly what was logged (what encoding/json makes of invalid UTF-8,
// for the invalid ones), and the line holds nothing a terminal interprets.
func TestJSONFormatter(t *testing.T) {
	for _, s := range hostileValues {
		checkJSONFormatter(t, s)
	}
}

// checkJSONFormatter logs s as message, field and error through
// JSONFormatter and logrus's own, and compares.
func checkJSONFormatter(t *testing.T, s string) {
	t.Helper()
	e := logrus.NewEntry(logrus.New()).WithFields(logrus.Fields{"mount_point": s, "conn": 42}).WithError(errors.New(s))
	e.Message, e.Level = s, logrus.WarnLevel
	out, err := (&JSONFormatter{}).Format(e)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := (&logrus.JSONFormatter{}).Format(e)
	if err != nil {
		t.Fatal(err)
	}
	line, ok := strings.CutSuffix(string(out), "\n")
	if !ok {
		t.Fatalf("%q: log line %q does not end in a newline", s, out)
	}
	assertSafe(t, line)
	got := assertSameJSON(t, plain, out).(map[string]any)
	if utf8.ValidString(s) {
		for _, k := range []string{"msg", "mount_point", "error"} {
			if got[k] != s {
				t.Fatalf("%s decodes as %q, want %q", k, got[k], s)
			}
		}
	}
}

// assertSameJSON fails unless a and b are valid JSON that decode to equal
// values; it returns b's.
func assertSameJSON(t testing.TB, a, b []byte) any {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%q (from %q): %v", b, a, err)
	}
	if !reflect.DeepEqual(va, vb) {
		t.Fatalf("%q decodes as %#v, but %q as %#v", a, va, b, vb)
	}
	return vb
}

// FuzzJSON: for any bytes, JSON leaves nothing unsafe but JSON's
// whitespace, is idempotent, and keeps valid JSON valid with the same
// values; a log line of any string is safe and decodes as logrus's own.
func FuzzJSON(f *testing.F) {
	for _, s := range hostileValues {
		f.Add(s)
	}
	for _, s := range []string{`{"a":[1,"\u009b",null]}`, "\"\\\\\u202e\"", "{\"k\u0085\":\"\xff\"}", " [true , \"\U000E0001\"]\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := JSON([]byte(s))
		assertSafe(t, strings.NewReplacer("\n", "", "\t", "", "\r", "").Replace(string(out)))
		if again := JSON(out); !bytes.Equal(again, out) {
			t.Fatalf("JSON is not idempotent on %q: %q, then %q", s, out, again)
		}
		if json.Valid([]byte(s)) {
			assertSameJSON(t, []byte(s), out)
		}
		checkJSONFormatter(t, s)
	})
}
