package dockerd_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/test/dockerd"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestTeardownRescuesWedged leaves a wedged W2 container behind, with a
// host FUSE mount bind-mounted into it beside (W5), and registers no abort
// of its own: the daemon's teardown must abort the container's connection,
// remove everything, and leave the host's mount alone and serving.
func TestTeardownRescuesWedged(t *testing.T) {
	testenv.RequireFUSE(t)
	bin := fixture.Binary(t)

	host := fixture.HostMount(t, "fgdhost")
	hostConn := uint32(host.Conn)

	var d *dockerd.Daemon
	var conn uint32
	var initPid int
	t.Run("daemon", func(t *testing.T) {
		d = dockerd.Start(t, dockerd.Options{})
		image := d.ImportImage(t, "fgtest/fusefixture:rescue", map[string]string{"/fusefixture": bin})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		args := append(dockerd.FUSERunArgs(), "-v", host.Dir+":/host:ro")
		id, err := d.RunDetached(ctx, image, "runc", args,
			"sh", "-c", "/fusefixture serve -mode read -mount /mnt -self-read; true")
		if err != nil {
			t.Fatal(err)
		}
		logs, err := d.WaitLog(ctx, id, "fusefixture: ready role=serve")
		if err != nil {
			t.Fatalf("%v\n%s", err, logs)
		}
		conn = uint32(fixture.ConnFromOutput(t, logs))
		st, err := d.Inspect(ctx, id)
		if err != nil || !st.Running {
			t.Fatalf("armed container: %+v, %v", st, err)
		}
		initPid = st.Pid
		conns, err := dockerd.FUSEConns(initPid)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(conns, conn) || !slices.Contains(conns, hostConn) {
			t.Fatalf("FUSEConns(init %d) = %v, want both the container's %d and the bind-mounted host's %d", initPid, conns, conn, hostConn)
		}
		// Wedge it behind Docker's back: init now waits in
		// zap_pid_ns_processes for the daemon's stuck thread.
		if err := unix.Kill(initPid, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
	})
	if conn == 0 || initPid == 0 {
		t.Fatal("the daemon subtest did not arm the wedge")
	}
	// Should the teardown fail, do not leave the wedge to the next test.
	t.Cleanup(func() { _ = dockerd.AbortFUSEOf([]int{initPid}, conn) })

	if fuseconn.NewControl(dockerd.FusectlDir).Exists(fuseconn.ConnID(conn)) {
		t.Errorf("the container's connection %d still exists after teardown", conn)
	}
	if err := unix.Kill(initPid, 0); err == nil {
		t.Errorf("container init %d still alive after teardown", initPid)
	}
	if _, err := os.Stat(d.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after teardown (%v)", d.Dir, err)
	}
	// The host's mount must still answer; read it from a child process
	// with a deadline, never from the test process.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := host.Answers(ctx); err != nil {
		t.Fatalf("host FUSE mount does not answer after teardown: %v", err)
	}
}
