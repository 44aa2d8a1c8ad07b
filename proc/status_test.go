package proc

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// sigbit is the bit of a signal in the SigPnd/ShdPnd/SigBlk masks.
func sigbit(sig unix.Signal) uint64 { return 1 << (uint(sig) - 1) }

func TestParseStatusCaptures(t *testing.T) {
	for _, c := range captures(t, ".status") {
		t.Run(c.name, func(t *testing.T) {
			st, err := ParseStatus(c.data)
			if err != nil {
				t.Fatal(err)
			}
			// Expectations from the capture's own lines, read the simple way.
			lines := map[string]string{}
			for _, l := range strings.Split(string(c.data), "\n") {
				if k, v, ok := strings.Cut(l, ":\t"); ok {
					lines[k] = v
				}
			}
			if st.State != lines["State"][:1] {
				t.Errorf("State = %q, line %q", st.State, lines["State"])
			}
			// Both captures are tasks killed in the container: SIGKILL is pending
			// for the whole group.
			if st.ShdPnd&sigbit(unix.SIGKILL) == 0 {
				t.Errorf("ShdPnd = %#x, want SIGKILL (%#x)", st.ShdPnd, sigbit(unix.SIGKILL))
			}
			if st.SigPnd != 0 {
				t.Errorf("SigPnd = %#x, want 0", st.SigPnd)
			}
			if name, ok := lines["Name"]; ok {
				if st.Name != name || st.Tgid == 0 || st.Threads != 1 {
					t.Errorf("got %+v, Name line %q", st, name)
				}
				// Init of a pid namespace: outermost pid is the Tgid, innermost is 1.
				if len(st.NSpid) != 2 || st.NSpid[0] != st.Tgid || st.NSpid[1] != 1 {
					t.Errorf("NSpid = %v, Tgid %d; want [Tgid 1]", st.NSpid, st.Tgid)
				}
			} else if st.Name != "" || st.Tgid != 0 || st.NSpid != nil {
				t.Errorf("fields absent from the capture were set: %+v", st)
			}
		})
	}
}

func TestParseStatusMalformed(t *testing.T) {
	full := string(readCapture(t, "linux-6.18-init-zap.status"))
	for name, in := range map[string]string{
		"empty":       "",
		"garbage":     "\x00\xffnothing: here\n",
		"no fields":   "Foo:\t1\nBar:\t2\n",
		"bad tgid":    strings.Replace(full, "Tgid:\t24306", "Tgid:\tx", 1),
		"huge tgid":   strings.Replace(full, "Tgid:\t24306", "Tgid:\t99999999999999999999999", 1),
		"bad nspid":   strings.Replace(full, "NSpid:\t24306\t1", "NSpid:\t24306\t-1", 1),
		"empty nspid": strings.Replace(full, "NSpid:\t24306\t1", "NSpid:\t", 1),
		"huge sigpnd": strings.Replace(full, "SigPnd:\t0000000000000000", "SigPnd:\t10000000000000000", 1),
		"bad shdpnd":  strings.Replace(full, "ShdPnd:\t0000000000000100", "ShdPnd:\tzz", 1),
		"bad state":   strings.Replace(full, "State:\tS (sleeping)", "State:\t", 1),
		"truncated":   full[:strings.Index(full, "Tgid:")+7] + "x",
	} {
		if st, err := ParseStatus([]byte(in)); err == nil {
			t.Errorf("%s: ParseStatus = %+v, want an error", name, st)
		}
	}
}

// formatStatus writes st back in the kernel's layout.
func formatStatus(st Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Name:\t%s\nTgid:\t%d\nPPid:\t%d\n", st.Name, st.Tgid, st.PPid)
	if st.State != "" {
		fmt.Fprintf(&b, "State:\t%s (x)\n", st.State)
	}
	if st.NSpid != nil {
		b.WriteString("NSpid:")
		for _, p := range st.NSpid {
			fmt.Fprintf(&b, "\t%d", p)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Threads:\t%d\nSigPnd:\t%016x\nShdPnd:\t%016x\nSigBlk:\t%016x\n",
		st.Threads, st.SigPnd, st.ShdPnd, st.SigBlk)
	return b.String()
}

func FuzzParseStatus(f *testing.F) {
	for _, c := range captures(f, ".status") {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStatus(b)
		if err != nil {
			return
		}
		again, err := ParseStatus([]byte(formatStatus(st)))
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("round trip of %+v: %+v, %v", st, again, err)
		}
	})
}
