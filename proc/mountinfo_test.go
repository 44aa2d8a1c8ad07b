package proc

import (
	"strings"
	"testing"
)

func TestParseMountInfoCaptures(t *testing.T) {
	for _, c := range captures(t, ".mountinfo") {
		t.Run(c.name, func(t *testing.T) {
			mounts, err := ParseMountInfo(c.data)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(c.data)), "\n")
			if len(mounts) != len(lines) {
				t.Fatalf("%d mounts from %d lines", len(mounts), len(lines))
			}
			for i, m := range mounts {
				// Field 1 is the mount id, field 5 the mount point.
				f := strings.Fields(lines[i])
				if m.ID != atoi(t, f[0]) || m.Mountpoint != f[4] {
					t.Errorf("mount %d = %+v, line %q", i, m, lines[i])
				}
			}
			if !strings.Contains(c.name, "container") {
				return
			}
			// The README: mount 91 is the FUSE mount, connection 0:41.
			var fuse []int
			for _, m := range mounts {
				if strings.HasPrefix(m.FSType, "fuse.") || m.FSType == "fuse" {
					fuse = append(fuse, m.ID)
					if m.ID != 91 || m.Major != 0 || m.Minor != 41 || m.FSType != "fuse.ndrive" || m.Mountpoint != "/mnt/ndrive" {
						t.Errorf("FUSE mount %+v, want id 91 at /mnt/ndrive on 0:41", m)
					}
				}
			}
			if len(fuse) != 1 {
				t.Errorf("FUSE mounts %v, want just 91", fuse)
			}
		})
	}
}

func TestParseMountInfoMalformed(t *testing.T) {
	full := string(readCapture(t, "linux-6.18-container.mountinfo"))
	for name, in := range map[string]string{
		"empty":        "",
		"garbage":      "\x00\xff garbage\n",
		"truncated":    full[:40],
		"no separator": "1 2 0:3 / / rw shared:1 x ext4 /dev/vda rw\n",
		"no major":     "1 2 03 / / rw - ext4 /dev/vda rw\n",
		"long line":    "1 2 0:3 / /" + strings.Repeat("x", 70000) + " rw - ext4 /dev/vda rw\n",
	} {
		if m, err := ParseMountInfo([]byte(in)); err == nil {
			t.Errorf("%s: ParseMountInfo = %d mounts, want an error", name, len(m))
		}
	}
}

func FuzzMountInfo(f *testing.F) {
	for _, c := range captures(f, ".mountinfo") {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mounts, err := ParseMountInfo(b)
		if err != nil {
			return
		}
		if len(mounts) == 0 {
			t.Fatal("no error and no mounts")
		}
		for _, m := range mounts {
			if m == nil {
				t.Fatal("nil mount")
			}
		}
	})
}
