package proc

import "testing"

func TestParseNamespaceLink(t *testing.T) {
	for _, tc := range []struct {
		kind, link string
		ino        uint64
		ok         bool
	}{
		{"pid", "pid:[4026531836]", 4026531836, true},
		{"mnt", "mnt:[4026532123]", 4026532123, true},
		{"pid_for_children", "pid_for_children:[4026531836]", 4026531836, true},
		{"pid", "mnt:[4026531836]", 0, false},
		{"pid", "pid:[4026531836", 0, false},
		{"pid", "pid:4026531836", 0, false},
		{"pid", "pid:[]", 0, false},
		{"pid", "pid:[-1]", 0, false},
		{"pid", "pid:[18446744073709551616]", 0, false},
		{"pid", "", 0, false},
	} {
		ino, err := ParseNamespaceLink(tc.kind, tc.link)
		if (err == nil) != tc.ok || ino != tc.ino {
			t.Errorf("ParseNamespaceLink(%q, %q) = %d, %v; want %d, ok %v", tc.kind, tc.link, ino, err, tc.ino, tc.ok)
		}
	}
}

func TestParseCgroup(t *testing.T) {
	hybrid := "9:name=systemd:/\n4:memory:/process_api/00b5\n0::/system.slice/docker-abc.scope\n"
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"0::/\n", "/", true},
		{hybrid, "/system.slice/docker-abc.scope", true},
		{"4:memory:/a\n2:cpu:/b\n", "/a", true},
		{"0::/odd:name\n", "/odd:name", true},
		{"", "", false},
		{"\n", "", false},
		{"garbage\n", "", false},
		{"0:/\n", "", false},
		{":cpu:/a\n", "", false},
		{"0::relative\n", "", false},
	} {
		got, err := ParseCgroup([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseCgroup(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
