package proc

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestParseStatCaptures(t *testing.T) {
	for _, c := range captures(t, ".stat") {
		t.Run(c.name, func(t *testing.T) {
			st, err := ParseStat(c.data)
			if err != nil {
				t.Fatal(err)
			}
			// The captured comm has no space, so plain field splitting gives
			// proc(5)'s 1-based numbering: f[n-1] is field n.
			f := strings.Fields(string(c.data))
			want := Stat{
				PID:       atoi(t, f[0]),
				Comm:      strings.Trim(f[1], "()"),
				State:     f[2],
				PPID:      atoi(t, f[3]),
				Flags:     uint(atou(t, f[8])),
				StartTime: atou(t, f[21]),
			}
			if st != want {
				t.Errorf("ParseStat = %+v, want %+v", st, want)
			}
			if strings.Contains(c.name, "init-zap") && !st.Exiting() {
				t.Errorf("init in zap_pid_ns_processes: flags %#x lack PF_EXITING", st.Flags)
			}
		})
	}
}

func TestParseStatComm(t *testing.T) {
	rest := " S 7 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0"
	for _, comm := range []string{"a b", "x) S 1 2 (y", "((", "))", "", "😀 (tab\t)"} {
		st, err := ParseStat([]byte("42 (" + comm + ")" + rest))
		if err != nil {
			t.Errorf("comm %q: %v", comm, err)
			continue
		}
		if st.Comm != comm || st.PID != 42 || st.PPID != 7 || st.StartTime != 99 || st.Flags != 4194560 || st.Exiting() {
			t.Errorf("comm %q: got %+v", comm, st)
		}
	}
}

func TestParseStatMalformed(t *testing.T) {
	full := string(readCapture(t, "linux-6.18-init-zap.stat"))
	for name, in := range map[string]string{
		"empty":          "",
		"garbage":        "\x00\xff not a stat file",
		"no comm":        "1 S 0 0",
		"no pid":         "(init) S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
		"truncated":      full[:len(full)/3],
		"only comm":      "1 (x)",
		"huge pid":       strings.Replace(full, "24306", "99999999999999999999999", 1),
		"negative ppid":  strings.Replace(full, " 24304 ", " -5 ", 1),
		"huge starttime": strings.Replace(full, " 143151 ", " 18446744073709551616 ", 1),
		"bad flags":      strings.Replace(full, " 4195596 ", " 0x4 ", 1),
		"long state":     strings.Replace(full, ") S ", ") SS ", 1),
	} {
		if st, err := ParseStat([]byte(in)); err == nil {
			t.Errorf("%s: ParseStat(%.40q) = %+v, want an error", name, in, st)
		}
	}
}

// formatStat writes st back as a stat line (the fields ParseStat ignores are 0).
func formatStat(st Stat) string {
	return fmt.Sprintf("%d (%s) %s %d 0 0 0 0 %d 0 0 0 0 0 0 0 0 0 0 0 0 %d 0 0\n",
		st.PID, st.Comm, st.State, st.PPID, st.Flags, st.StartTime)
}

func FuzzParseStat(f *testing.F) {
	for _, c := range captures(f, ".stat") {
		f.Add(c.data)
	}
	f.Add([]byte("1 (a) b) R 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStat(b)
		if err != nil {
			return
		}
		again, err := ParseStat([]byte(formatStat(st)))
		if err != nil || again != st {
			t.Fatalf("round trip of %+v: %+v, %v", st, again, err)
		}
	})
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func atou(t testing.TB, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
