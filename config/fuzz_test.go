package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: the decoder never panics; it either returns a valid
// configuration, which WriteTOML writes back to the same one, or a
// one-line ErrInvalid.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "deploy", "config.toml")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"", "state_dir = \"/x\"\n", "[policy]\nallow_shared_fstypes = [\"fuse.a\"]\n", "[watch]\ngrace = \"-1s\"\n",
		"[timeouts]\nverify = 5\n", "[log]\nlevel = 1\n", "a.b.c = 1", "[[watch]]\n", "[policy]\nabort_shared = 2020-01-01\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q is not ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned an invalid configuration: %v", err)
		}
		checkRoundTrip(t, c)
	})
}
