package proc

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// capture is one file of testdata.
type capture struct {
	name string // base name, e.g. "linux-6.18-init-zap.stat"
	data []byte
}

// captures returns every testdata file whose name ends in ext (".stack").
func captures(t testing.TB, ext string) []capture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no testdata/*%s", ext)
	}
	var cs []capture
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, capture{name: filepath.Base(p), data: b})
	}
	return cs
}

// readCapture returns one testdata file.
func readCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fdinfoBlock is one fdinfo file cut out of a concatenated capture.
type fdinfoBlock struct {
	fd     int
	target string
	data   []byte
}

var fdinfoHeader = regexp.MustCompile(`^== fd (\d+) -> (.*)$`)

// splitFDInfo cuts a capture made of "== fd N -> target" headers, each
// followed by that fd's fdinfo file.
func splitFDInfo(t testing.TB, b []byte) []fdinfoBlock {
	t.Helper()
	var out []fdinfoBlock
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if m := fdinfoHeader.FindStringSubmatch(strings.TrimSuffix(line, "\n")); m != nil {
			fd, err := strconv.Atoi(m[1])
			if err != nil {
				t.Fatalf("header %q: %v", line, err)
			}
			out = append(out, fdinfoBlock{fd: fd, target: m[2]})
			continue
		}
		if len(out) == 0 {
			if strings.TrimSpace(line) != "" {
				t.Fatalf("fdinfo capture: %q before the first header", line)
			}
			continue
		}
		out[len(out)-1].data = append(out[len(out)-1].data, line...)
	}
	return out
}

// TestEveryCaptureHasAParser keeps the table tests honest: a capture added
// to testdata with a new extension must get a parser test.
func TestEveryCaptureHasAParser(t *testing.T) {
	known := map[string]bool{".stat": true, ".status": true, ".stack": true, ".wchan": true,
		".syscall": true, ".fdinfo": true, ".mountinfo": true, ".md": true}
	ents, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue // fuzz corpora
		}
		if !known[filepath.Ext(e.Name())] {
			t.Errorf("testdata/%s: no parser test covers %q files", e.Name(), filepath.Ext(e.Name()))
		}
	}
}
