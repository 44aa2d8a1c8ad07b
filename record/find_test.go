package record

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestStoreFind: every way a caller names a record — exact id, id prefix,
// init pid and start time, an id checked against a pid — on real files.
func TestStoreFind(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewStore(testenv.StateDir(t))
	for _, r := range []*Record{
		testRecord("aaaa1111", 100, 1000, at),
		testRecord("bbbb1111", 200, 2000, at),
		testRecord("bbbb2222", 300, 3000, at),
	} {
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		q       Query
		wantID  string
		wantErr error  // errors.Is, when wantID is ""
		errHas  string // substring of the error, when set
	}{
		{"exact id", Query{ID: "aaaa1111"}, "aaaa1111", nil, ""},
		{"exact id, its pid", Query{ID: "aaaa1111", PID: 100}, "aaaa1111", nil, ""},
		{"exact id, another pid", Query{ID: "aaaa1111", PID: 200}, "", ErrNoRecord, "the record is for pid 100"},
		{"exact id, reused pid", Query{ID: "aaaa1111", PID: 100, StartTime: 999}, "", ErrNoRecord, ""},
		{"prefix without IDPrefix", Query{ID: "aaaa"}, "", ErrNoRecord, ""},
		{"unique prefix", Query{ID: "aaaa", IDPrefix: true}, "aaaa1111", nil, ""},
		{"exact id wins over prefix", Query{ID: "bbbb1111", IDPrefix: true}, "bbbb1111", nil, ""},
		{"ambiguous prefix", Query{ID: "bbbb", IDPrefix: true}, "", nil, `"bbbb" names both bbbb1111 and bbbb2222`},
		{"no such prefix", Query{ID: "cccc", IDPrefix: true}, "", ErrNoRecord, ""},
		{"invalid id", Query{ID: "../etc", IDPrefix: true}, "", ErrInvalidID, ""},
		{"pid", Query{PID: 200}, "bbbb1111", nil, ""},
		{"pid and start time", Query{PID: 300, StartTime: 3000}, "bbbb2222", nil, ""},
		{"pid, another start time", Query{PID: 300, StartTime: 3001}, "", ErrNoRecord, ""},
		{"nothing named", Query{}, "", ErrNoRecord, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Find(tc.q)
			if tc.wantID != "" {
				if err != nil || got == nil || got.ID != tc.wantID {
					t.Fatalf("Find(%+v) = %+v, %v; want %s", tc.q, got, err, tc.wantID)
				}
				return
			}
			if err == nil || got != nil {
				t.Fatalf("Find(%+v) = %+v, %v; want an error", tc.q, got, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Find(%+v): %v, want %v", tc.q, err, tc.wantErr)
			}
			if tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("Find(%+v): %v, want it to say %q", tc.q, err, tc.errHas)
			}
		})
	}
}
