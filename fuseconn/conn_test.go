package fuseconn

import (
	"errors"
	"strconv"
	"testing"
)

func TestParseConnID(t *testing.T) {
	tests := []struct {
		in   string
		want ConnID
		ok   bool
	}{
		{"0", 0, true},
		{"41", 41, true},
		{"007", 7, true},
		{"4294967295", 4294967295, true},
		{"4294967296", 0, false}, // overflows uint32
		{"99999999999", 0, false},
		{"00000000001", 0, false}, // 11 digits
		{"", 0, false},
		{"+1", 0, false},
		{"-1", 0, false},
		{" 1", 0, false},
		{"1\n", 0, false},
		{"12a", 0, false},
		{"0x1f", 0, false},
		{"../1", 0, false},
		{"1/abort", 0, false},
		{"١٢", 0, false}, // Arabic-Indic digits are not ASCII
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseConnID(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidConnID) {
					t.Fatalf("ParseConnID(%q) = %v, %v; want ErrInvalidConnID", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseConnID(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestConnIDString(t *testing.T) {
	for _, id := range []ConnID{0, 1, 41, 1048575, 4294967295} {
		s := id.String()
		if want := strconv.FormatUint(uint64(id), 10); s != want {
			t.Errorf("ConnID(%d).String() = %q, want %q", uint32(id), s, want)
		}
		back, err := ParseConnID(s)
		if err != nil || back != id {
			t.Errorf("ParseConnID(%q) = %v, %v; want %d", s, back, err, uint32(id))
		}
	}
}

func FuzzParseConnID(f *testing.F) {
	for _, s := range []string{"0", "41", "4294967295", "4294967296", "", "+1", "-0", "1e3", "../1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseConnID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidConnID) {
				t.Fatalf("ParseConnID(%q): error %v does not wrap ErrInvalidConnID", s, err)
			}
			return
		}
		if len(s) == 0 || len(s) > 10 {
			t.Fatalf("ParseConnID(%q) accepted %d bytes", s, len(s))
		}
		for _, r := range s {
			if r < '0' || r > '9' {
				t.Fatalf("ParseConnID(%q) accepted non-digit %q", s, r)
			}
		}
		back, err := ParseConnID(id.String())
		if err != nil || back != id {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, id, id.String(), back, err)
		}
	})
}
