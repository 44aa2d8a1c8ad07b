package proc

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSyscallCaptures(t *testing.T) {
	for _, c := range captures(t, ".syscall") {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseSyscall(c.data)
			if err != nil {
				t.Fatal(err)
			}
			// "nr arg0..arg5 sp pc": the capture's fields, parsed the obvious way.
			var want Syscall
			var a [8]uint64
			if _, err := fmt.Sscanf(string(c.data), "%d %v %v %v %v %v %v %v %v",
				&want.Number, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7]); err != nil {
				t.Fatal(err)
			}
			copy(want.Args[:], a[:6])
			want.SP, want.PC = a[6], a[7]
			if s != want {
				t.Errorf("ParseSyscall = %+v, want %+v", s, want)
			}
			// The captures come from x86_64, where read is 0; the fd is arg0
			// on every architecture.
			if fd, ok := (Syscall{Number: unix.SYS_READ, Args: s.Args}).FD(); !ok || fd != 8 {
				t.Errorf("read's FD() = %d, %v; want 8 (the README's fd)", fd, ok)
			}
			if s.Number == unix.SYS_READ {
				if fd, ok := s.FD(); !ok || fd != 8 {
					t.Errorf("FD() = %d, %v; want 8", fd, ok)
				}
			}
		})
	}
}

func TestParseSyscallShapes(t *testing.T) {
	for in, want := range map[string]Syscall{
		"running\n":            {Running: true, Number: -1},
		"-1 0x7ffc10 0x40a70e": {Number: -1, SP: 0x7ffc10, PC: 0x40a70e},
		"0 0x8 0x10aa10041fac 0x4 0x0 0x0 0x0 0x10aa10041e70 0x40a70e\n": {
			Number: 0, Args: [6]uint64{8, 0x10aa10041fac, 4}, SP: 0x10aa10041e70, PC: 0x40a70e},
		"230 0x0 0x0 0x7fff0c316540 0x7fff0c316580 0x0 0x0 0x7fff0c316528 0x7fedf86db503": {
			Number: 230, Args: [6]uint64{0, 0, 0x7fff0c316540, 0x7fff0c316580}, SP: 0x7fff0c316528, PC: 0x7fedf86db503},
	} {
		s, err := ParseSyscall([]byte(in))
		if err != nil || s != want {
			t.Errorf("%q: %+v, %v; want %+v", in, s, err, want)
		}
		if fd, ok := s.FD(); (s.Running || s.Number < 0) && ok {
			t.Errorf("%q: FD() = %d outside a syscall", in, fd)
		}
	}
}

func TestSyscallFD(t *testing.T) {
	args := [6]uint64{3, 4, 5, 6, 7, 8}
	for _, tc := range []struct {
		nr      int
		fd      int
		ok      bool
		name    string
		args    *[6]uint64
		running bool
	}{
		{unix.SYS_READ, 3, true, "read", nil, false},
		{unix.SYS_WRITE, 3, true, "write", nil, false},
		{unix.SYS_PREAD64, 3, true, "pread64", nil, false},
		{unix.SYS_PWRITEV2, 3, true, "pwritev2", nil, false},
		{unix.SYS_FSYNC, 3, true, "fsync", nil, false},
		{unix.SYS_GETDENTS64, 3, true, "getdents64", nil, false},
		{unix.SYS_IOCTL, 3, true, "ioctl", nil, false},
		{unix.SYS_FSTAT, 3, true, "fstat", nil, false},
		{unix.SYS_FLOCK, 3, true, "flock", nil, false},
		{unix.SYS_FCNTL, 3, true, "fcntl", nil, false},
		{unix.SYS_FGETXATTR, 3, true, "fgetxattr", nil, false},
		{unix.SYS_COPY_FILE_RANGE, 3, true, "copy_file_range", nil, false},
		{unix.SYS_SPLICE, 3, true, "splice", nil, false},
		{unix.SYS_SENDFILE, 4, true, "sendfile in_fd", nil, false},
		{unix.SYS_OPENAT, 0, false, "openat names a path", nil, false},
		{unix.SYS_NEWFSTATAT, 0, false, "newfstatat (fd only with AT_EMPTY_PATH)", nil, false},
		{unix.SYS_CLOCK_NANOSLEEP, 0, false, "clock_nanosleep", nil, false},
		{unix.SYS_READ, 0, false, "read, running", nil, true},
		{-1, 0, false, "outside a syscall", nil, false},
		{unix.SYS_READ, 0, false, "negative fd", &[6]uint64{^uint64(0)}, false},
		{unix.SYS_READ, 7, true, "high bits ignored", &[6]uint64{1<<32 | 7}, false},
	} {
		s := Syscall{Number: tc.nr, Args: args, Running: tc.running}
		if tc.args != nil {
			s.Args = *tc.args
		}
		if fd, ok := s.FD(); fd != tc.fd || ok != tc.ok {
			t.Errorf("%s: FD() = %d, %v; want %d, %v", tc.name, fd, ok, tc.fd, tc.ok)
		}
	}
}

func TestParseSyscallMalformed(t *testing.T) {
	full := strings.TrimSpace(string(readCapture(t, "linux-6.18-fuse-read-killed.syscall")))
	for name, in := range map[string]string{
		"empty":          "",
		"blank":          " \n",
		"garbage":        "\xff\x00 garbage",
		"RUNNING":        "Running",
		"running extra":  "running 0x1",
		"truncated":      full[:len(full)/2],
		"too many":       full + " 0x1",
		"-1 with args":   "-1 0x1 0x2 0x3",
		"-2":             "-2 0x1 0x2",
		"decimal arg":    "0 8 0x1 0x2 0x3 0x4 0x5 0x6 0x7",
		"huge arg":       "0 0x10000000000000000 0x1 0x2 0x3 0x4 0x5 0x6 0x7",
		"huge number":    "99999999999999999999 0x0 0x1 0x2 0x3 0x4 0x5 0x6 0x7",
		"number is hex":  "0x0 0x0 0x1 0x2 0x3 0x4 0x5 0x6 0x7",
		"empty hex":      "-1 0x 0x1",
		"number missing": "0x1 0x2",
	} {
		if s, err := ParseSyscall([]byte(in)); err == nil {
			t.Errorf("%s: ParseSyscall(%q) = %+v, want an error", name, in, s)
		}
	}
}

// formatSyscall writes s back in the kernel's layout.
func formatSyscall(s Syscall) string {
	switch {
	case s.Running:
		return "running\n"
	case s.Number < 0:
		return fmt.Sprintf("%d %#x %#x\n", s.Number, s.SP, s.PC)
	}
	a := s.Args
	return fmt.Sprintf("%d %#x %#x %#x %#x %#x %#x %#x %#x\n", s.Number, a[0], a[1], a[2], a[3], a[4], a[5], s.SP, s.PC)
}

func FuzzParseSyscall(f *testing.F) {
	for _, c := range captures(f, ".syscall") {
		f.Add(c.data)
	}
	f.Add([]byte("running\n"))
	f.Add([]byte("-1 0x7ffc10 0x40a70e\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSyscall(b)
		if err != nil {
			return
		}
		if fd, ok := s.FD(); ok && fd < 0 {
			t.Fatalf("FD() = %d", fd)
		}
		again, err := ParseSyscall([]byte(formatSyscall(s)))
		if err != nil || again != s {
			t.Fatalf("round trip of %+v: %+v, %v", s, again, err)
		}
	})
}
