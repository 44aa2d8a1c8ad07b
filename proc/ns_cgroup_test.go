package proc

import (
	"slices"
	"strings"
	"testing"
)

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

func TestParseControllerCgroup(t *testing.T) {
	v1 := "12:freezer:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n"
	for _, tc := range []struct {
		in, controller, path, hierarchy string
		found, ok                       bool
	}{
		{v1, "freezer", "/docker/abc", "freezer", true, true},
		{v1, "cpuacct", "/docker/abc", "cpu,cpuacct", true, true},
		{v1, "cpu", "/docker/abc", "cpu,cpuacct", true, true},
		{v1, "memory", "", "", false, true},
		{v1, "name=systemd", "/docker/abc", "name=systemd", true, true},
		{"0::/system.slice/x.scope\n", "freezer", "", "", false, true},
		{"3:freezer,net_cls:/a:b\n", "freezer", "/a:b", "freezer,net_cls", true, true},
		{"", "freezer", "", "", false, true},
		{"0::/\n", "", "", "", false, true},
		{"garbage\n", "freezer", "", "", false, false},
		{"3:freezer:relative\n", "freezer", "", "", false, false},
	} {
		path, h, found, err := ParseControllerCgroup([]byte(tc.in), tc.controller)
		if (err == nil) != tc.ok || path != tc.path || h != tc.hierarchy || found != tc.found {
			t.Errorf("ParseControllerCgroup(%q, %q) = %q, %q, %v, %v; want %q, %q, %v, ok %v",
				tc.in, tc.controller, path, h, found, err, tc.path, tc.hierarchy, tc.found, tc.ok)
		}
	}
}

func FuzzParseControllerCgroup(f *testing.F) {
	f.Add("12:freezer:/docker/abc\n0::/\n", "freezer")
	f.Add("4:cpu,cpuacct:/a\n", "cpu")
	f.Fuzz(func(t *testing.T, in, controller string) {
		path, h, found, err := ParseControllerCgroup([]byte(in), controller)
		if err != nil || !found {
			if path != "" || h != "" {
				t.Fatalf("not found but path %q hierarchy %q", path, h)
			}
			return
		}
		if !strings.HasPrefix(path, "/") || !strings.Contains(in, ":"+h+":"+path) {
			t.Fatalf("path %q hierarchy %q not a line of %q", path, h, in)
		}
		if !slices.Contains(strings.Split(h, ","), controller) {
			t.Fatalf("hierarchy %q lacks %q", h, controller)
		}
	})
}
