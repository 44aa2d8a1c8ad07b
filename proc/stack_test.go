package proc

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseStackCaptures(t *testing.T) {
	for _, c := range captures(t, ".stack") {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseStack(c.data)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(c.data)), "\n")
			if len(s) != len(lines) {
				t.Fatalf("%d frames from %d lines", len(s), len(lines))
			}
			for i, f := range s {
				// Every captured frame is "[<0>] " + the frame as Frame.String prints it.
				if got := "[<0>] " + f.String(); got != lines[i] {
					t.Errorf("frame %d = %q, line %q", i, got, lines[i])
				}
				if f.Size == 0 || f.Offset >= f.Size {
					t.Errorf("frame %d %+v: offset not inside the function", i, f)
				}
				// Linux 6.1 (Debian) builds fuse as a module, 6.18 builds it in.
				wantMod := ""
				if strings.HasPrefix(c.name, "linux-6.1-") && strings.HasPrefix(f.Base(), "fuse_") ||
					strings.HasPrefix(c.name, "linux-6.1-") && f.Function == "request_wait_answer" {
					wantMod = "fuse"
				}
				if f.Module != wantMod {
					t.Errorf("frame %d %+v: module %q, want %q", i, f, f.Module, wantMod)
				}
			}
			if bottom := s[len(s)-1].Function; !strings.HasPrefix(bottom, "entry_SYSCALL_64") {
				t.Errorf("outermost frame %q, want the syscall entry", bottom)
			}
			switch {
			case strings.Contains(c.name, "init-zap"):
				if !s.Has("zap_pid_ns_processes") || !s.Has("do_exit") || s.Top().Function != "do_wait" {
					t.Errorf("init stack %s: want do_wait <- … zap_pid_ns_processes <- do_exit", s)
				}
			case strings.Contains(c.name, "fuse"):
				if s.Top().Function != "request_wait_answer" {
					t.Errorf("Top() = %+v, want request_wait_answer", s.Top())
				}
				if s.Has("zap_pid_ns_processes") {
					t.Errorf("FUSE waiter %s has zap_pid_ns_processes", s)
				}
			default:
				t.Fatalf("capture %s: no expectation", c.name)
			}
			if strings.Contains(c.name, "fuse_flush-at-exit") {
				if !s.Has("fuse_flush") || !s.Has("put_files_struct") || !s.Has("do_exit") {
					t.Errorf("exit-flush stack %s", s)
				}
				// Linux 6.7 split filp_flush out of filp_close.
				if got, want := s.Has("filp_flush"), strings.HasPrefix(c.name, "linux-6.18-"); got != want {
					t.Errorf("Has(filp_flush) = %v on %s", got, c.name)
				}
			}
		})
	}
}

func TestFrameBase(t *testing.T) {
	for fn, want := range map[string]string{
		"put_files_struct.part.0":           "put_files_struct",
		"do_pselect.constprop.0":            "do_pselect",
		"fuse_dev_do_read.isra.0":           "fuse_dev_do_read",
		"__schedule.cold":                   "__schedule",
		"x.constprop.0.isra.0":              "x",
		"request_wait_answer":               "request_wait_answer",
		"poll_schedule_timeout.constprop.0": "poll_schedule_timeout",
	} {
		if got := (Frame{Function: fn}).Base(); got != want {
			t.Errorf("Base(%q) = %q, want %q", fn, got, want)
		}
	}
	s, err := ParseStack(readCapture(t, "linux-6.18-fuse_flush-at-exit.stack"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Has("put_files_struct.part.0") || s.Has("put_files_struct.part.1") || s.Has("put_files") {
		t.Errorf("Has on a clone name: %s", s)
	}
}

func TestParseStackShapes(t *testing.T) {
	for in, want := range map[string]Frame{
		"[<0>] fuse_flush+0x1a1/0x1e0 [fuse]\n":                 {"fuse_flush", 0x1a1, 0x1e0, "fuse"},
		"[<ffffffff8110c0a5>] do_wait+0x53/0x120\n":             {"do_wait", 0x53, 0x120, ""},
		"[<0>] put_files_struct.part.0+0x5a/0xc0":               {"put_files_struct.part.0", 0x5a, 0xc0, ""},
		"[<0>] 0xffffffffc0a1b2c3\n":                            {"0xffffffffc0a1b2c3", 0, 0, ""},
		"[<0>] a+b+0x1/0x2 [m_1]\n":                             {"a+b", 1, 2, "m_1"},
		"\n\n[<0>] x+0xffffffffffffffff/0xffffffffffffffff\n\n": {"x", 1<<64 - 1, 1<<64 - 1, ""},
	} {
		s, err := ParseStack([]byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(s, Stack{want}) {
			t.Errorf("%q: %+v, want %+v", in, s, want)
		}
	}
}

func TestParseStackMalformed(t *testing.T) {
	full := string(readCapture(t, "linux-6.1-fuse_flush-at-exit.stack"))
	for name, in := range map[string]string{
		"empty":        "",
		"blank lines":  "\n\n",
		"garbage":      "\x00\xff\xfe garbage\n",
		"no prefix":    "do_wait+0x53/0x120\n",
		"no function":  "[<0>] +0x1/0x2\n",
		"no address":   "[<0>] \n",
		"bad offset":   "[<0>] do_wait+0x5z/0x120\n",
		"no size":      "[<0>] do_wait+0x53\n",
		"decimal":      "[<0>] do_wait+53/120\n",
		"huge offset":  "[<0>] do_wait+0x10000000000000000/0x1\n",
		"bad module":   "[<0>] do_wait+0x1/0x2 fuse\n",
		"empty module": "[<0>] do_wait+0x1/0x2 []\n",
		"extra field":  "[<0>] do_wait+0x1/0x2 [fuse] x\n",
		"truncated":    full[:strings.Index(full, "fuse_flush")+14],
	} {
		if s, err := ParseStack([]byte(in)); err == nil {
			t.Errorf("%s: ParseStack = %s, want an error", name, s)
		}
	}
}

func FuzzParseStack(f *testing.F) {
	for _, c := range captures(f, ".stack") {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStack(b)
		if err != nil {
			return
		}
		if len(s) == 0 {
			t.Fatal("no error and no frames")
		}
		var out strings.Builder
		for _, fr := range s {
			out.WriteString("[<0>] " + fr.String() + "\n")
			if strings.Contains(fr.Base(), ".") {
				t.Fatalf("Base(%q) = %q keeps a suffix", fr.Function, fr.Base())
			}
		}
		again, err := ParseStack([]byte(out.String()))
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip of %+v: %+v, %v", s, again, err)
		}
		_ = s.String()
	})
}
