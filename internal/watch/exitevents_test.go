package watch

import (
	"encoding/binary"
	"errors"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// requireExitEvents opens the taskstats source or skips (fails under CI)
// with the kernel's reason.
func requireExitEvents(t testing.TB) *exitEvents {
	t.Helper()
	testenv.RequireRoot(t)
	e, err := openExitEvents()
	if err != nil {
		testenv.Require(t, false, err.Error())
	}
	t.Cleanup(e.close)
	return e
}

// TestExitEventsReportExit: the kernel sends the pid of a task entering
// do_exit to the registered socket.
func TestExitEventsReportExit(t *testing.T) {
	e := requireExitEvents(t)
	sleep := testenv.RequireBinary(t, "sleep")
	c := exec.Command(sleep, "infinity")
	c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := c.Process.Pid
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var seen []int
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(e.fd), Events: unix.POLLIN}}
		_, _ = unix.Poll(pfd, 100)
		if _, err := e.drain(func(p int) { seen = append(seen, p) }); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(seen, pid) {
			return
		}
	}
	t.Fatalf("no exit notification for pid %d within 5s (saw %d others)", pid, len(seen))
}

// taskstatsMsg builds a TASKSTATS_CMD_NEW message as taskstats_exit does:
// AGGR_PID{PID, STATS} and, for a thread group's last task, AGGR_TGID.
func taskstatsMsg(family uint16, pid, tgid uint32) []byte {
	ne := binary.NativeEndian
	attr := func(typ uint16, val []byte) []byte {
		a := make([]byte, nlaAlign(unix.SizeofNlAttr+len(val)))
		ne.PutUint16(a, uint16(unix.SizeofNlAttr+len(val)))
		ne.PutUint16(a[2:], typ)
		copy(a[unix.SizeofNlAttr:], val)
		return a
	}
	u32 := func(v uint32) []byte { b := make([]byte, 4); ne.PutUint32(b, v); return b }
	stats := make([]byte, 352)
	body := []byte{unix.TASKSTATS_CMD_NEW, 1, 0, 0}
	body = append(body, attr(unix.TASKSTATS_TYPE_AGGR_PID|unix.NLA_F_NESTED,
		append(attr(unix.TASKSTATS_TYPE_PID, u32(pid)), attr(unix.TASKSTATS_TYPE_STATS, stats)...))...)
	if tgid != 0 {
		body = append(body, attr(unix.TASKSTATS_TYPE_AGGR_TGID|unix.NLA_F_NESTED,
			append(attr(unix.TASKSTATS_TYPE_TGID, u32(tgid)), attr(unix.TASKSTATS_TYPE_STATS, stats)...))...)
	}
	m := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	ne.PutUint32(m, uint32(unix.NLMSG_HDRLEN+len(body)))
	ne.PutUint16(m[4:], family)
	return append(m, body...)
}

func TestParseExits(t *testing.T) {
	const fam = 27
	tests := []struct {
		name    string
		in      []byte
		want    []int
		wantErr bool
	}{
		{"one task", taskstatsMsg(fam, 4242, 0), []int{4242}, false},
		{"group's last task: the tgid is not a task that began to exit now", taskstatsMsg(fam, 77, 70), []int{77}, false},
		{"two messages", append(taskstatsMsg(fam, 1, 0), taskstatsMsg(fam, 2, 0)...), []int{1, 2}, false},
		{"other family skipped", taskstatsMsg(fam+1, 9, 0), nil, false},
		{"empty", nil, nil, false},
		{"truncated header", taskstatsMsg(fam, 5, 0)[:10], nil, true},
		{"length past the buffer", func() []byte {
			m := taskstatsMsg(fam, 5, 0)
			binary.NativeEndian.PutUint32(m, uint32(len(m)+8))
			return m
		}(), nil, true},
		{"short attribute", func() []byte {
			m := taskstatsMsg(fam, 5, 0)
			binary.NativeEndian.PutUint16(m[unix.NLMSG_HDRLEN+sizeofGenlmsghdr:], 2)
			return m
		}(), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			err := parseExits(tt.in, fam, func(p int) { got = append(got, p) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errExitEventsMalformed) {
				t.Errorf("err = %v, want errExitEventsMalformed", err)
			}
			if !tt.wantErr && !slices.Equal(got, tt.want) {
				t.Errorf("pids = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseExits(f *testing.F) {
	f.Add(taskstatsMsg(27, 4242, 0))
	f.Add(taskstatsMsg(27, 77, 70))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := parseExits(b, 27, func(int) { n++ })
		if err != nil && !errors.Is(err, errExitEventsMalformed) {
			t.Fatalf("error %v is not errExitEventsMalformed", err)
		}
		if n > len(b)/(unix.NLMSG_HDRLEN+sizeofGenlmsghdr+2*unix.SizeofNlAttr+4) {
			t.Fatalf("%d pids out of %d bytes", n, len(b))
		}
	})
}

// TestExitEventsW3 verifies on this kernel that the taskstats notification
// of init comes before its exit blocks: a W3 container (its daemon holds a
// file on its own mount, whose FLUSH at exit is never answered, and init
// waits for it in zap_pid_ns_processes) is killed while the watcher reads
// no init on a timer (the safety check is an hour away), and the watcher
// detects the stuck exit within grace + 1 s of the kill and rescues it.
// Had the notification come after the exit's flush or zap, nothing would
// tell the watcher within the hour.
func TestExitEventsW3(t *testing.T) {
	requireExitEvents(t)
	dir := testenv.StateDir(t)
	r := startWatcher(t, dir, Options{SafetyCheckInterval: time.Hour, CheckInterval: time.Hour})
	if ev := r.ev.wait(t, EventExitSource, "", time.Second); ev.Err != nil {
		t.Fatalf("watcher polls: %v", ev.Err)
	}
	c := fixture.W3(t, true)
	rec := saveRecord(t, dir, "w3", c.InitPID)
	r.ev.wait(t, EventTracked, rec.ID, 5*time.Second)
	killed := time.Now()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	ev := r.ev.wait(t, EventDetected, rec.ID, DefaultGrace+5*time.Second)
	took := ev.Time.Sub(killed)
	t.Logf("stuck exit detected %s after the kill (grace %s)", took.Round(time.Millisecond), DefaultGrace)
	if bound := DefaultGrace + time.Second; took > bound {
		t.Errorf("detected %s after the kill, want within grace + 1s = %s", took, bound)
	}
	select {
	case <-c.Exited():
	case <-time.After(rescueBound):
		t.Fatalf("init not reaped within %s; events %v", rescueBound, r.ev.all())
	}
	rescued := r.ev.wait(t, EventRescued, rec.ID, time.Second)
	if got := aborted(rescued.Report); !slices.Equal(got, []fuseconn.ConnID{c.Conn}) {
		t.Errorf("aborted %v, want [%d]", got, c.Conn)
	}
}

// TestExitEventsOverrunChecksEveryInit: with the socket's buffer shrunk to
// a message or two, a burst of exits loses notifications (ENOBUFS); the
// watcher counts the loss in its state and checks every init, so a W3
// killed right behind the burst, whose own notification may be among the
// lost, is still detected within grace + 1 s. No init is read on a timer
// meanwhile (the safety check is an hour away).
func TestExitEventsOverrunChecksEveryInit(t *testing.T) {
	requireExitEvents(t)
	truePath := testenv.RequireBinary(t, "true")
	dir := testenv.StateDir(t)
	r := startWatcherThen(t, dir, Options{SafetyCheckInterval: time.Hour}, func(w *Watcher) {
		if w.exits == nil {
			t.Fatalf("watcher polls: %s", w.exitErr)
		}
		// The kernel doubles the value and keeps a floor of about 2 KiB.
		if err := unix.SetsockoptInt(w.exits.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1); err != nil {
			t.Fatal(err)
		}
	})
	c := fixture.W3(t, true)
	rec := saveRecord(t, dir, "w3-overrun", c.InitPID)
	r.ev.wait(t, EventTracked, rec.ID, 5*time.Second)
	for i := 0; i < 64; i++ {
		if err := exec.Command(truePath).Run(); err != nil {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	ev := r.ev.wait(t, EventDetected, rec.ID, DefaultGrace+5*time.Second)
	took := ev.Time.Sub(killed)
	t.Logf("stuck exit detected %s after the kill (grace %s)", took.Round(time.Millisecond), DefaultGrace)
	if bound := DefaultGrace + time.Second; took > bound {
		t.Errorf("detected %s after the kill, want within grace + 1s = %s", took, bound)
	}
	st := waitStatus(t, dir, 2*time.Second, func(s Status) bool { return s.Watcher != nil && s.Watcher.ExitEventOverruns > 0 })
	t.Logf("notifications lost %d times", st.Watcher.ExitEventOverruns)
	select {
	case <-c.Exited():
	case <-time.After(rescueBound):
		t.Fatalf("init not reaped within %s; events %v", rescueBound, r.ev.all())
	}
}
