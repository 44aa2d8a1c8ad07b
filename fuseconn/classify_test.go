package fuseconn

import "testing"

func fuseMount(id int, conn ConnID, mp string) Mount {
	return Mount{MountID: id, Minor: int(conn), Conn: conn, MountPoint: mp, FSType: "fuse.t", Subtype: "t", Source: "t"}
}

func TestClassify(t *testing.T) {
	lxcfs := fuseMount(10, 61, "/var/lib/lxcfs")
	tests := []struct {
		name      string
		container []Mount
		host      []Mount
		want      []Connection
	}{
		{name: "nothing"},
		{
			name:      "owned: not on the host",
			container: []Mount{fuseMount(200, 70, "/mnt/own")},
			host:      []Mount{lxcfs},
			want:      []Connection{{Mount: fuseMount(200, 70, "/mnt/own"), Owned: true}},
		},
		{
			name:      "shared: bind mount of a host connection",
			container: []Mount{fuseMount(201, 61, "/proc/cpuinfo")},
			host:      []Mount{lxcfs},
			want:      []Connection{{Mount: fuseMount(201, 61, "/proc/cpuinfo")}},
		},
		{
			name:      "dedupe: first mount of a connection wins",
			container: []Mount{fuseMount(201, 61, "/proc/cpuinfo"), fuseMount(202, 70, "/a"), fuseMount(203, 61, "/proc/meminfo"), fuseMount(204, 70, "/b")},
			host:      []Mount{lxcfs},
			want:      []Connection{{Mount: fuseMount(201, 61, "/proc/cpuinfo")}, {Mount: fuseMount(202, 70, "/a"), Owned: true}},
		},
		{
			name: "same minor, other major (fuseblk) is another device",
			container: []Mount{
				{MountID: 205, Major: 8, Minor: 61, Conn: 61, MountPoint: "/media", FSType: "fuseblk"},
			},
			host: []Mount{lxcfs},
			want: []Connection{{Mount: Mount{MountID: 205, Major: 8, Minor: 61, Conn: 61, MountPoint: "/media", FSType: "fuseblk"}, Owned: true}},
		},
		{
			name:      "no host table: all owned",
			container: []Mount{fuseMount(206, 80, "/x")},
			want:      []Connection{{Mount: fuseMount(206, 80, "/x"), Owned: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.container, tt.host)
			if len(got) != len(tt.want) {
				t.Fatalf("Classify = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("connection %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
