package fuseconn

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/testenv"
	"github.com/fuseguard/fuseguard/test/wedgefs"
)

func findConn(conns []Connection, id ConnID) (Connection, bool) {
	for _, c := range conns {
		if c.Conn == id {
			return c, true
		}
	}
	return Connection{}, false
}

// TestObserveShared mounts a FUSE file system in the test's own mount
// namespace, which is pid 1's here: the connection is the host's.
func TestObserveShared(t *testing.T) {
	testenv.RequireFUSE(t)
	fx := mountFixture(t, wedgefs.ModeHealthy)

	conns, err := Observe(proc.NewFS(""), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	c, ok := findConn(conns, fx.conn)
	if !ok {
		t.Fatalf("Observe(self) = %+v, missing connection %d of %s", conns, fx.conn, fx.dir)
	}
	if c.MountPoint != fx.dir || c.FSType != "fuse."+fixtureName || c.Subtype != fixtureName || c.Major != 0 {
		t.Errorf("connection %+v does not describe the fixture mount on %s", c, fx.dir)
	}
	onHost := hostHasDev(t, fx.conn)
	if c.Owned == onHost {
		t.Errorf("Owned = %v, but /proc/1/mountinfo lists 0:%d: %v", c.Owned, fx.conn, onHost)
	}
	self, _ := os.Readlink("/proc/self/ns/mnt")
	pid1, _ := os.Readlink("/proc/1/ns/mnt")
	if self == pid1 && !onHost {
		t.Errorf("same mount namespace as pid 1 (%s) but 0:%d is not in its table", self, fx.conn)
	}

	host, err := HostMounts(proc.NewFS(""))
	if err != nil {
		t.Fatal(err)
	}
	var inHost bool
	for _, m := range host {
		inHost = inHost || m.Conn == fx.conn
	}
	if inHost != onHost {
		t.Errorf("HostMounts lists connection %d: %v; /proc/1/mountinfo: %v", fx.conn, inHost, onHost)
	}
}

// TestObserveOwned mounts a FUSE file system in a child's private mount
// namespace: the connection is the child's alone.
func TestObserveOwned(t *testing.T) {
	testenv.RequireFUSE(t)
	dir := t.TempDir()
	c := startChild(t, "mountns", dir, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}, nil)
	line, err := c.readLine(10 * time.Second)
	if err != nil {
		t.Fatalf("helper: %v; stderr: %s", err, c.stderr)
	}
	connStr, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		t.Fatalf("helper said %q; stderr: %s", line, c.stderr)
	}
	conn, err := ParseConnID(connStr)
	if err != nil {
		t.Fatal(err)
	}

	conns, err := Observe(proc.NewFS(""), c.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := findConn(conns, conn)
	if !ok {
		t.Fatalf("Observe(child) = %+v, missing connection %d", conns, conn)
	}
	if got.MountPoint != dir || !got.Owned {
		t.Errorf("connection = %+v, want owned on %s", got, dir)
	}
	if hostHasDev(t, conn) {
		t.Errorf("the child's private mount 0:%d leaked into /proc/1/mountinfo", conn)
	}
	// The test process's own view does not hold the child's mount.
	self, err := Observe(proc.NewFS(""), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := findConn(self, conn); ok {
		t.Errorf("connection %d visible outside the child's namespace", conn)
	}
}

func TestObserveNoProcess(t *testing.T) {
	// A pid above pid_max never exists.
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	max, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		t.Fatal(err)
	}
	if conns, err := Observe(proc.NewFS(""), max+1); !errors.Is(err, proc.ErrNoProcess) {
		t.Fatalf("Observe(pid_max+1) = %+v, %v; want proc.ErrNoProcess", conns, err)
	}
}

// TestHostMountsSelfFallback: when pid 1's table cannot be read, our own
// stands in only if we provably share pid 1's mount namespace; otherwise
// (fuseguard in a container of its own) the host table is unreadable. The
// proc root is real for this process and made up for pid 1.
func TestHostMountsSelfFallback(t *testing.T) {
	self := os.Getpid()
	selfNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		pid1NS string // "": no ns link
		ok     bool
	}{
		{"same mount namespace", selfNS, true},
		{"another mount namespace", "mnt:[1]", false},
		{"namespace unreadable", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, err := proc.NewFS("").MountInfo(self)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			if err := os.Symlink("/proc/"+strconv.Itoa(self), root+"/"+strconv.Itoa(self)); err != nil {
				t.Fatal(err)
			}
			// pid 1's mountinfo is a directory: reading it fails.
			if err := os.MkdirAll(root+"/1/mountinfo", 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.pid1NS != "" {
				if err := os.MkdirAll(root+"/1/ns", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(tt.pid1NS, root+"/1/ns/mnt"); err != nil {
					t.Fatal(err)
				}
			}
			got, err := HostMounts(proc.NewFS(root))
			// Tests of other packages mount and unmount FUSE in this
			// namespace meanwhile: read again until two reads agree.
			for i := 0; i < 5 && err == nil && !slices.Equal(got, FUSEMounts(want)); i++ {
				if want, err = proc.NewFS("").MountInfo(self); err != nil {
					t.Fatal(err)
				}
				got, err = HostMounts(proc.NewFS(root))
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("HostMounts = %+v, want an error", got)
				}
				fuse := []Mount{{MountID: 1, Conn: 41, FSType: "fuse.x"}}
				if c := ReadHostTable(proc.NewFS(root)).Classify(fuse); c[0].Owned || c[0].OwnershipUnknown == "" {
					t.Fatalf("unreadable host table classified %+v", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, FUSEMounts(want)) {
				t.Fatalf("HostMounts = %+v, want our own FUSE mounts %+v", got, FUSEMounts(want))
			}
		})
	}
}
