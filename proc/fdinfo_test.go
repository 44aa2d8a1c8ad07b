package proc

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseFDInfoCaptures(t *testing.T) {
	for _, c := range captures(t, ".fdinfo") {
		blocks := splitFDInfo(t, c.data)
		if len(blocks) < 2 {
			t.Fatalf("%s: %d fds", c.name, len(blocks))
		}
		byFD := map[int]FDInfo{}
		for _, blk := range blocks {
			t.Run(fmt.Sprintf("%s/fd%d", c.name, blk.fd), func(t *testing.T) {
				fi, err := ParseFDInfo(blk.data)
				if err != nil {
					t.Fatal(err)
				}
				byFD[blk.fd] = fi
				// Expectations from the block's own "key:\tvalue" lines.
				kv := map[string]string{}
				for _, l := range strings.Split(string(blk.data), "\n") {
					if k, v, ok := strings.Cut(l, ":\t"); ok {
						kv[k] = v
					}
				}
				flags, err := strconv.ParseUint(kv["flags"], 8, 64)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Pos != int64(atoi(t, kv["pos"])) || fi.Flags != flags || fi.MntID != atoi(t, kv["mnt_id"]) {
					t.Errorf("ParseFDInfo = %+v, lines %v", fi, kv)
				}
				// Only the /dev/fuse fd of a mounted connection names it.
				if fi.HasFUSEConnection != (blk.target == "/dev/fuse") {
					t.Errorf("fd %d -> %s: HasFUSEConnection = %v", blk.fd, blk.target, fi.HasFUSEConnection)
				}
				if fi.HasFUSEConnection && strconv.FormatUint(uint64(fi.FUSEConnection), 10) != kv["fuse_connection"] {
					t.Errorf("FUSEConnection = %d, line %q", fi.FUSEConnection, kv["fuse_connection"])
				}
			})
		}
		if !strings.Contains(c.name, "fuse-read-killed") {
			continue
		}
		// The README: the reader is blocked on fd 8, a read-only file on mount
		// 91; the daemon's /dev/fuse (fd 5) serves connection 41, opened O_RDWR.
		if fi := byFD[8]; fi.MntID != 91 || fi.Flags&unix.O_ACCMODE != unix.O_RDONLY || fi.HasFUSEConnection {
			t.Errorf("fd 8 = %+v, want mnt_id 91, O_RDONLY, no connection", fi)
		}
		if fi := byFD[5]; !fi.HasFUSEConnection || fi.FUSEConnection != 41 || fi.Flags&unix.O_ACCMODE != unix.O_RDWR {
			t.Errorf("fd 5 = %+v, want fuse_connection 41, O_RDWR", fi)
		}
	}
}

func TestParseFDInfoMalformed(t *testing.T) {
	ok := "pos:\t0\nflags:\t0100000\nmnt_id:\t91\nino:\t2\n"
	for name, in := range map[string]string{
		"empty":          "",
		"garbage":        "\x00\xff:\xfe\n",
		"no pos":         "flags:\t0100000\nmnt_id:\t91\n",
		"no flags":       "pos:\t0\nmnt_id:\t91\n",
		"no mnt_id":      "pos:\t0\nflags:\t0100000\n",
		"truncated":      ok[:20],
		"octal 8":        strings.Replace(ok, "0100000", "0100008", 1),
		"huge pos":       strings.Replace(ok, "pos:\t0", "pos:\t9223372036854775808", 1),
		"negative mnt":   strings.Replace(ok, "mnt_id:\t91", "mnt_id:\t-1", 1),
		"huge conn":      ok + "fuse_connection:\t4294967296\n",
		"bad conn":       ok + "fuse_connection:\tx\n",
		"huge flags":     strings.Replace(ok, "0100000", "7777777777777777777777777", 1),
		"empty pos":      strings.Replace(ok, "pos:\t0", "pos:", 1),
		"mnt_id letters": strings.Replace(ok, "91", "9a", 1),
	} {
		if fi, err := ParseFDInfo([]byte(in)); err == nil {
			t.Errorf("%s: ParseFDInfo(%q) = %+v, want an error", name, in, fi)
		}
	}
}

// formatFDInfo writes fi back in the kernel's layout.
func formatFDInfo(fi FDInfo) string {
	s := fmt.Sprintf("pos:\t%d\nflags:\t0%o\nmnt_id:\t%d\nino:\t1\n", fi.Pos, fi.Flags, fi.MntID)
	if fi.HasFUSEConnection {
		s += fmt.Sprintf("fuse_connection:\t%d\n", fi.FUSEConnection)
	}
	return s
}

func FuzzParseFDInfo(f *testing.F) {
	for _, c := range captures(f, ".fdinfo") {
		for _, blk := range splitFDInfo(f, c.data) {
			f.Add(blk.data)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fi, err := ParseFDInfo(b)
		if err != nil {
			return
		}
		if fi.FUSEConnection != 0 && !fi.HasFUSEConnection {
			t.Fatalf("connection %d without HasFUSEConnection", fi.FUSEConnection)
		}
		again, err := ParseFDInfo([]byte(formatFDInfo(fi)))
		if err != nil || again != fi {
			t.Fatalf("round trip of %+v: %+v, %v", fi, again, err)
		}
	})
}
