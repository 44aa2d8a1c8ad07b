package watch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/proc"
)

// statLine builds a /proc/PID/stat line with comm, state and flags.
func statLine(comm, state string, flags uint) []byte {
	return fmt.Appendf(nil, "42 (%s) %s 1 42 42 0 -1 %d 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n", comm, state, flags)
}

func TestExitState(t *testing.T) {
	// Opened and read on one thread, which is running while it reads.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.ReadFile("/proc/thread-self/stat") // the reading thread runs; the leader may sleep
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []byte
		state   byte
		exiting bool
		wantErr bool
	}{
		{"running", statLine("sleep", "S", 0x400100), 'S', false, false},
		{"exiting", statLine("init", "S", 0x400144), 'S', true, false},
		{"zombie leader", statLine("fusefixture", "Z", 0x40014c), 'Z', true, false},
		{"comm with parens and spaces", statLine("a) S 1 (b", "D", 4), 'D', true, false},
		{"self", self, 'R', false, false},
		{"no comm", []byte("42 sleep S 1"), 0, false, true},
		{"truncated", []byte("42 (x) S 1 2 3"), 0, false, true},
		{"bad flags", statLine("x", "S", 0)[:0], 0, false, true},
		{"flags not a number", []byte("42 (x) S 1 42 42 0 -1 4x 1\n"), 0, false, true},
		{"state too long", []byte("42 (x) SS 1 42 42 0 -1 4 1\n"), 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, exiting, err := exitState(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if state != tt.state || exiting != tt.exiting {
				t.Errorf("= %q, %v; want %q, %v", state, exiting, tt.state, tt.exiting)
			}
			// The full parser must agree.
			st, perr := proc.ParseStat(tt.in)
			if perr != nil || st.State != string([]byte{state}) || st.Exiting() != exiting {
				t.Errorf("proc.ParseStat disagrees: %+v, %v", st, perr)
			}
		})
	}
}

// FuzzExitState checks exitState against proc.ParseStat wherever both
// accept the input.
func FuzzExitState(f *testing.F) {
	f.Add(statLine("sleep", "S", 0x400100))
	f.Add(statLine("a) (b", "Z", 4))
	f.Add([]byte("1 (x) S 1 2 3 4 5 6"))
	f.Fuzz(func(t *testing.T, b []byte) {
		state, exiting, err := exitState(b)
		st, perr := proc.ParseStat(b)
		if err != nil || perr != nil {
			return
		}
		if st.State != string([]byte{state}) || st.Exiting() != exiting {
			t.Fatalf("exitState %q %v, ParseStat %q %v", state, exiting, st.State, st.Exiting())
		}
	})
}

// inotifyBuf encodes inotify events as the kernel does (names padded).
func inotifyBuf(evs ...struct {
	mask uint32
	name string
}) []byte {
	var b bytes.Buffer
	for _, e := range evs {
		name := []byte(e.name)
		if len(name) > 0 {
			name = append(name, make([]byte, 16-len(name)%16)...)
		}
		hdr := unix.InotifyEvent{Wd: 1, Mask: e.mask, Len: uint32(len(name))}
		binary.Write(&b, binary.NativeEndian, hdr)
		b.Write(name)
	}
	return b.Bytes()
}

type ev = struct {
	mask uint32
	name string
}

func TestParseInotify(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		want     []dirEvent
		overflow bool
	}{
		{"saved by rename", inotifyBuf(ev{unix.IN_MOVED_FROM, ".tmp-123"}, ev{unix.IN_MOVED_TO, "c1.json"}), []dirEvent{{"c1", true}}, false},
		{"written in place", inotifyBuf(ev{unix.IN_CLOSE_WRITE, "c2.json"}), []dirEvent{{"c2", true}}, false},
		{"removed", inotifyBuf(ev{unix.IN_DELETE, "c3.json"}, ev{unix.IN_MOVED_FROM, "c4.json"}), []dirEvent{{"c3", false}, {"c4", false}}, false},
		{"not records", inotifyBuf(ev{unix.IN_CLOSE_WRITE, "watch.lock"}, ev{unix.IN_CLOSE_WRITE, ".json"}, ev{unix.IN_CLOSE_WRITE, "watch.log"}), nil, false},
		{"overflow", inotifyBuf(ev{unix.IN_Q_OVERFLOW, ""}), nil, true},
		{"truncated", inotifyBuf(ev{unix.IN_CLOSE_WRITE, "c5.json"})[:20], nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, overflow := parseInotify(tt.in)
			if !slices.Equal(got, tt.want) || overflow != tt.overflow {
				t.Errorf("= %v, %v; want %v, %v", got, overflow, tt.want, tt.overflow)
			}
		})
	}
}

func FuzzParseInotify(f *testing.F) {
	f.Add(inotifyBuf(ev{unix.IN_MOVED_TO, "c1.json"}, ev{unix.IN_DELETE, "c2.json"}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, _ := parseInotify(b)
		for _, e := range evs {
			if e.id == "" || e.id[0] == '.' {
				t.Fatalf("bad id %q", e.id)
			}
		}
	})
}

func TestParseRunTime(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"123456 789 10\n", 123456, true},
		{"0 0 0\n", 0, true},
		{"18446744073709551615 0 0", 0, false}, // too close to overflow: refused, never wrapped
		{"", 0, false},
		{"x 1 2", 0, false},
		{"12x 1 2", 0, false},
		{"42", 42, true},
	}
	for _, tt := range tests {
		got, ok := parseRunTime([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRunTime(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseRunTime(f *testing.F) {
	f.Add([]byte("123456 789 10\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := parseRunTime(b)
		if !ok {
			return
		}
		// It must be the leading decimal field.
		fields := bytes.Fields(b)
		if len(fields) == 0 {
			t.Fatalf("parseRunTime(%q) = %d from no field", b, n)
		}
		if want, err := strconv.ParseUint(string(fields[0]), 10, 64); err != nil || want != n {
			t.Fatalf("parseRunTime(%q) = %d", b, n)
		}
	})
}
