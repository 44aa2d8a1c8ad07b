package record

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/test/testenv"
	"github.com/fuseguard/fuseguard/test/wedgefs"
)

// healthyMount is a wedgefs mount served by the test process, answering
// every request.
type healthyMount struct {
	dir  string
	conn fuseconn.ConnID // from the mount table, computed without fuseconn
}

// mountHealthy mounts a healthy wedgefs on a temp dir, unmounted in Cleanup.
func mountHealthy(t *testing.T) healthyMount {
	t.Helper()
	srv, err := wedgefs.Mount(t.TempDir(), wedgefs.Options{Mode: wedgefs.ModeHealthy, Name: "fgtest"})
	if err != nil {
		t.Fatalf("mount wedgefs fixture: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount fixture: %v", err)
		}
	})
	conn, err := srv.Conn()
	if err != nil {
		t.Fatal(err)
	}
	return healthyMount{dir: srv.Dir(), conn: fuseconn.ConnID(conn)}
}

// TestNewRecord records the test process itself and checks each field
// against /proc read by hand.
func TestNewRecord(t *testing.T) {
	testenv.RequireFUSE(t)
	fx := mountHealthy(t)
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

	r, err := NewRecord(proc.NewFS(""), "self-1", os.Getpid(), now)
	if err != nil {
		t.Fatal(err)
	}

	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	rest := string(stat[bytes.LastIndexByte(stat, ')')+2:]) // from field 3 on
	start, err := strconv.ParseUint(strings.Fields(rest)[22-3], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	nsIno := func(kind string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/self/ns/"+kind, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var wantCgroup string
	for _, l := range strings.Split(string(cg), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			wantCgroup = p
		}
	}

	if r.Version != RecordVersion || r.ID != "self-1" || r.InitPID != os.Getpid() {
		t.Errorf("record header = %d %q %d", r.Version, r.ID, r.InitPID)
	}
	if r.InitStartTime != start {
		t.Errorf("InitStartTime = %d, want %d", r.InitStartTime, start)
	}
	if r.PidNS != nsIno("pid") || r.MntNS != nsIno("mnt") {
		t.Errorf("namespaces = %d %d, want %d %d", r.PidNS, r.MntNS, nsIno("pid"), nsIno("mnt"))
	}
	if wantCgroup != "" && r.Cgroup != wantCgroup {
		t.Errorf("Cgroup = %q, want %q", r.Cgroup, wantCgroup)
	}
	if !r.Created.Equal(now) || !r.Updated.Equal(now) {
		t.Errorf("Created/Updated = %v/%v, want %v", r.Created, r.Updated, now)
	}
	rc, ok := r.Lookup(fx.conn)
	if !ok {
		t.Fatalf("record lacks the fixture connection %d: %+v", fx.conn, r.Connections)
	}
	if !rc.FirstSeen.Equal(now) || rc.MountPoint != fx.dir {
		t.Errorf("recorded connection = %+v", rc)
	}

	if _, err := NewRecord(proc.NewFS(""), "../x", os.Getpid(), now); !errors.Is(err, ErrInvalidID) {
		t.Errorf("NewRecord(../x) = %v, want ErrInvalidID", err)
	}
}
