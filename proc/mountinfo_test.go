package proc

import (
	"bytes"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
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
		"bad mount id": "x 2 0:3 / / rw - ext4 /dev/vda rw\n",
		"bad minor":    "1 2 0:-3 / / rw - ext4 /dev/vda rw\n",
		"empty line":   "1 2 0:3 / / rw - ext4 /dev/vda rw\n\n1 2 0:3 / / rw - ext4 /dev/vda rw\n",
	} {
		if m, err := ParseMountInfo([]byte(in)); err == nil {
			t.Errorf("%s: ParseMountInfo = %d mounts, want an error", name, len(m))
		}
	}
}

// TestParseMountInfoLongLine: a line far over moby/sys/mountinfo's 64 KiB
// scanner limit parses, escapes and all.
func TestParseMountInfoLongLine(t *testing.T) {
	deep := strings.Repeat("/d\\134\\012\\033x", 8000) // "\134" is a backslash, "\012" a newline
	in := "20 1 0:5 / / rw - ext4 /dev/vda rw\n" +
		"91 20 0:41 / " + deep + " rw,nosuid shared:7 - fuse.my\\040fs src\\011x rw,user_id=0\n"
	mounts, err := ParseMountInfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := mountinfo.Info{
		ID: 91, Parent: 20, Major: 0, Minor: 41, Root: "/",
		Mountpoint: strings.Repeat("/d\\\n\x1bx", 8000),
		Options:    "rw,nosuid", Optional: "shared:7", FSType: "fuse.my fs", Source: "src\tx", VFSOptions: "rw,user_id=0",
	}
	if len(mounts) != 2 || *mounts[1] != want {
		t.Fatalf("ParseMountInfo: %d mounts, second %+v", len(mounts), mounts[len(mounts)-1])
	}
	if len(in) < 64<<10 {
		t.Fatalf("test line is only %d bytes", len(in))
	}
}

// FuzzMountInfo checks the parser against moby/sys/mountinfo, whose field
// semantics it keeps, wherever moby can read the input (lines under 64 KiB).
func FuzzMountInfo(f *testing.F) {
	for _, c := range captures(f, ".mountinfo") {
		f.Add(c.data)
	}
	f.Add([]byte("91 69 0:41 / /mnt/a\\040b\\134 rw shared:1 master:2 - fuse.x s\\012 rw,a=b c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mounts, err := ParseMountInfo(b)
		if err != nil {
			return
		}
		if len(mounts) == 0 {
			t.Fatal("no error and no mounts")
		}
		// moby's bufio.ScanLines drops a CR before a newline; the kernel
		// does not escape CR, so a mount point may end in one, and keeping
		// it is right.
		if bytes.Contains(b, []byte{'\r'}) {
			return
		}
		ref, refErr := mountinfo.GetMountsFromReader(bytes.NewReader(b), nil)
		if refErr != nil {
			if len(b) < 60<<10 {
				t.Fatalf("moby/sys/mountinfo fails where ParseMountInfo succeeds: %v", refErr)
			}
			return
		}
		if len(ref) != len(mounts) {
			t.Fatalf("%d mounts, moby/sys/mountinfo %d", len(mounts), len(ref))
		}
		for i, m := range mounts {
			r := *ref[i]
			// moby keeps only the first of several super option fields.
			got := *m
			got.VFSOptions, _, _ = strings.Cut(got.VFSOptions, " ")
			if got != r {
				t.Fatalf("mount %d: %+v, moby/sys/mountinfo %+v", i, got, r)
			}
		}
	})
}
