package fuseconn

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestIsFUSE(t *testing.T) {
	tests := []struct {
		fstype string
		want   bool
	}{
		{"fuse", true},
		{"fuseblk", true},
		{"fuse.sshfs", true},
		{"fuse.lxcfs", true},
		{"fuse.", true}, // "fuse." with an empty subtype is still fuse
		{"fusectl", false},
		{"fuse2", false},
		{"fuseblk.x", false},
		{"ext4", false},
		{"overlay", false},
		{"", false},
		{"FUSE", false},
		{"xfuse", false},
	}
	for _, tt := range tests {
		if got := IsFUSE(tt.fstype); got != tt.want {
			t.Errorf("IsFUSE(%q) = %v, want %v", tt.fstype, got, tt.want)
		}
	}
}

func TestParseFUSEMounts(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []Mount
	}{
		{
			name: "fuse with subtype",
			lines: []string{
				"91 69 0:41 / /mnt/ndrive rw,nosuid,nodev,relatime - fuse.ndrive ndrive rw,user_id=0,group_id=0",
			},
			want: []Mount{{MountID: 91, Major: 0, Minor: 41, Conn: 41, MountPoint: "/mnt/ndrive", FSType: "fuse.ndrive", Subtype: "ndrive", Source: "ndrive"}},
		},
		{
			name: "fuse without subtype",
			lines: []string{
				"100 26 0:52 / /mnt/plain rw,relatime shared:7 - fuse /dev/fuse rw,user_id=0,group_id=0",
			},
			want: []Mount{{MountID: 100, Minor: 52, Conn: 52, MountPoint: "/mnt/plain", FSType: "fuse", Source: "/dev/fuse"}},
		},
		{
			name: "fuseblk",
			lines: []string{
				"101 26 7:3 / /media/usb rw,relatime - fuseblk /dev/sdb1 rw,user_id=0,group_id=0,allow_other,blksize=4096",
			},
			want: []Mount{{MountID: 101, Major: 7, Minor: 3, Conn: 3, MountPoint: "/media/usb", FSType: "fuseblk", Source: "/dev/sdb1"}},
		},
		{
			name: "escaped space in mount point and optional fields",
			lines: []string{
				`102 26 0:60 / /mnt/my\040files rw,relatime shared:9 master:3 - fuse.sshfs user@host:/my\040dir rw,user_id=0,group_id=0`,
			},
			want: []Mount{{MountID: 102, Minor: 60, Conn: 60, MountPoint: "/mnt/my files", FSType: "fuse.sshfs", Subtype: "sshfs", Source: "user@host:/my dir"}},
		},
		{
			name: "non-FUSE types only",
			lines: []string{
				"26 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
				"84 72 0:39 / /sys/fs/fuse/connections rw,relatime - fusectl none rw",
				"90 26 0:50 / /merged rw - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c",
			},
		},
		{
			name: "mixed, bind-mounted twice",
			lines: []string{
				"26 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
				"110 26 0:61 / /a rw - fuse.lxcfs lxcfs rw",
				"111 26 0:61 /proc/cpuinfo /proc/cpuinfo rw - fuse.lxcfs lxcfs rw",
			},
			want: []Mount{
				{MountID: 110, Minor: 61, Conn: 61, MountPoint: "/a", FSType: "fuse.lxcfs", Subtype: "lxcfs", Source: "lxcfs"},
				{MountID: 111, Minor: 61, Conn: 61, MountPoint: "/proc/cpuinfo", FSType: "fuse.lxcfs", Subtype: "lxcfs", Source: "lxcfs"},
			},
		},
		{name: "empty table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Join(tt.lines, "\n")
			got, err := ParseFUSEMounts(strings.NewReader(in))
			if err != nil {
				t.Fatalf("ParseFUSEMounts: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d mounts %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("mount %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseFUSEMountsMalformed(t *testing.T) {
	for _, in := range []string{
		"91 69 0:41 / /mnt",                        // too few fields
		"91 69 0:41 / /mnt rw a b c d fuse.x x rw", // no separator
		"91 69 041 / /mnt rw - fuse.x x rw x",      // no major:minor
	} {
		if got, err := ParseFUSEMounts(strings.NewReader(in)); err == nil {
			t.Errorf("ParseFUSEMounts(%q) = %+v, want an error", in, got)
		}
	}
}

// TestParseFUSEMountsCapture parses a real container's mountinfo and checks
// the result against the FUSE line found by splitting the file by hand.
func TestParseFUSEMountsCapture(t *testing.T) {
	const path = "../proc/testdata/linux-6.18-container.mountinfo"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// Independent reading: fields before " - ", then type and source.
	var want []Mount
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			t.Fatalf("no separator in %q", sc.Text())
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if !strings.HasPrefix(qf[0], "fuse") || qf[0] == "fusectl" {
			continue
		}
		majS, minS, _ := strings.Cut(pf[2], ":")
		id, _ := strconv.Atoi(pf[0])
		maj, _ := strconv.Atoi(majS)
		minor, _ := strconv.ParseUint(minS, 10, 32)
		want = append(want, Mount{
			MountID: id, Major: maj, Minor: int(minor), Conn: ConnID(minor),
			MountPoint: pf[4], FSType: qf[0], Subtype: strings.TrimPrefix(qf[0], "fuse."), Source: qf[1],
		})
	}
	if len(want) != 1 {
		t.Fatalf("capture holds %d FUSE lines, the test expects 1", len(want))
	}

	got, err := ParseFUSEMounts(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != want[0] {
		t.Fatalf("ParseFUSEMounts = %+v, want %+v", got, want)
	}
}

func FuzzParseFUSEMounts(f *testing.F) {
	if b, err := os.ReadFile("../proc/testdata/linux-6.18-container.mountinfo"); err == nil {
		f.Add(string(b))
	}
	f.Add("91 69 0:41 / /mnt/ndrive rw - fuse.ndrive ndrive rw\n")
	f.Add(`102 26 0:60 / /mnt/my\040files rw shared:9 - fuse.sshfs u@h:/d rw` + "\n")
	f.Add("101 26 7:3 / /m rw - fuseblk /dev/sdb1 rw\n")
	f.Add("1 1 -1:-5 / /m rw - fuse x rw\n")
	f.Add("1 1 0:99999999999 / /m rw - fuse x rw\n")
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := ParseFUSEMounts(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, m := range ms {
			if !IsFUSE(m.FSType) {
				t.Fatalf("non-FUSE type kept: %+v", m)
			}
			if m.Minor < 0 || uint64(m.Minor) != uint64(m.Conn) {
				t.Fatalf("Conn %d does not match minor %d", m.Conn, m.Minor)
			}
			if m.Subtype != "" && m.FSType != "fuse."+m.Subtype {
				t.Fatalf("subtype %q does not match type %q", m.Subtype, m.FSType)
			}
			if strings.HasPrefix(m.FSType, "fuse.") && m.FSType != "fuse."+m.Subtype {
				t.Fatalf("subtype %q lost from type %q", m.Subtype, m.FSType)
			}
		}
	})
}

// TestHostTableClassify: an unreadable host table leaves every connection
// not owned, with the reason; a readable one classifies as Classify does.
func TestHostTableClassify(t *testing.T) {
	container := []Mount{{MountID: 91, Conn: 41, FSType: "fuse.a"}, {MountID: 92, Conn: 42, FSType: "fuse.lxcfs"}, {MountID: 93, Conn: 41, FSType: "fuse.a"}}
	host := []Mount{{MountID: 30, Conn: 42, FSType: "fuse.lxcfs"}}
	got := HostTable{Mounts: host}.Classify(container)
	if len(got) != 2 || !got[0].Owned || got[1].Owned || got[0].OwnershipUnknown != "" || got[1].OwnershipUnknown != "" {
		t.Fatalf("readable host table: %+v", got)
	}
	got = HostTable{Err: errors.New("proc: read /proc/1/mountinfo: permission denied")}.Classify(container)
	if len(got) != 2 {
		t.Fatalf("unreadable host table: %+v", got)
	}
	for _, c := range got {
		if c.Owned || c.OwnershipUnknown != "host mount table unreadable: proc: read /proc/1/mountinfo: permission denied" {
			t.Errorf("unreadable host table: %+v", c)
		}
	}
}
