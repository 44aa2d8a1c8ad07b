package watch

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestLateMountHostTableUnreadable: with the host's mount table
// unreadable, a mount made after start is still recorded, with its
// ownership unknown (never owned), so no rescue aborts it as the
// container's.
func TestLateMountHostTableUnreadable(t *testing.T) {
	dir := testenv.StateDir(t)
	c := startShell(t, `busybox sleep 1
"$FF" serve -mode healthy -mount "$M" -name ndrive -ready "$D/ready" &
wait`)
	// The proc root shows the processes of now (the shell's init among
	// them) and a pid 1 whose mount table is garbage.
	r := startWatcher(t, dir, Options{Proc: fixture.ProcWithPID1(t, fixture.GarbagePID1(t))})
	rec := saveRecord(t, dir, "nohost", c.pid())
	conn, _ := c.conn(10 * time.Second)
	ev := r.ev.wait(t, EventRefreshed, rec.ID, 5*time.Second)
	if !slices.Contains(ev.Conns, conn) {
		t.Fatalf("refreshed with %v, want %d", ev.Conns, conn)
	}
	saved, err := record.Store{Dir: dir}.Load(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	rc, ok := saved.Lookup(conn)
	if !ok || rc.Owned || !strings.HasPrefix(rc.OwnershipUnknown, "host mount table unreadable: ") {
		t.Fatalf("saved record: conn %d present=%v: %+v; want ownership unknown", conn, ok, rc)
	}
}
