package killer

import (
	"slices"
	"strings"
	"testing"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/proc"
)

// conn is a live connection proven the container's (generation 1000+id).
func conn(id fuseconn.ConnID, fstype string, owned bool, waiting int) ConnState {
	return ConnState{
		Connection: fuseconn.Connection{
			Mount: fuseconn.Mount{Conn: id, FSType: fstype, MountPoint: "/mnt/" + id.String()},
			Owned: owned,
			Gen:   fuseconn.Generation(1000 + id),
		},
		Waiting:   waiting,
		Live:      true,
		Proven:    true,
		MountedIn: "the mount table of stuck task 1",
	}
}

// unproven is conn as a diagnosis leaves a connection no live table of the
// container shows: its generation unknown, with why.
func unproven(c ConnState, why string) ConnState {
	c.Proven, c.Gen, c.MountedIn, c.Unproven = false, 0, "", why
	return c
}

func TestPolicyPlan(t *testing.T) {
	waitsOn := func(id fuseconn.ConnID) Task {
		return Task{TID: 100 + int(id), Comm: "reader", State: "D", Blocker: BlockerFUSERequest, Conn: id, HasConn: true, Via: "fd 3"}
	}
	flushing := Task{TID: 99, Comm: "holder", State: "D", Blocker: BlockerFUSEFlush}
	tests := []struct {
		name        string
		policy      Policy
		stuck       []Task
		conns       []ConnState
		wantPlan    []fuseconn.ConnID
		wantRefused []fuseconn.ConnID
		wantReason  string // in every refusal; default: how to allow the fs type
	}{
		{
			name:     "owned connection a stuck task waits on",
			stuck:    []Task{waitsOn(41)},
			conns:    []ConnState{conn(41, "fuse.ndrive", true, 1)},
			wantPlan: []fuseconn.ConnID{41},
		},
		{
			name:     "provable first, then owned with waiting, healthy owned untouched",
			stuck:    []Task{waitsOn(50)},
			conns:    []ConnState{conn(49, "fuse.a", true, 2), conn(50, "fuse.b", true, 1), conn(51, "fuse.c", true, 0)},
			wantPlan: []fuseconn.ConnID{50, 49},
		},
		{
			name:        "shared connection refused by default even when provably waited on",
			stuck:       []Task{waitsOn(60)},
			conns:       []ConnState{conn(60, "fuse.lxcfs", false, 1)},
			wantRefused: []fuseconn.ConnID{60},
		},
		{
			name:     "shared allowed by fs type, while a flush at exit names no connection",
			policy:   Policy{AllowSharedFSTypes: []string{"fuse.hostfs"}},
			stuck:    []Task{flushing},
			conns:    []ConnState{conn(61, "fuse.hostfs", false, 1), conn(62, "fuse.lxcfs", false, 3)},
			wantPlan: []fuseconn.ConnID{61}, wantRefused: []fuseconn.ConnID{62},
		},
		{
			name:     "abort-shared allows every shared one",
			policy:   Policy{AbortShared: true},
			stuck:    []Task{flushing},
			conns:    []ConnState{conn(62, "fuse.lxcfs", false, 3)},
			wantPlan: []fuseconn.ConnID{62},
		},
		{
			name:     "shared with requests waiting is not a candidate when every stuck task is explained",
			policy:   Policy{AbortShared: true},
			stuck:    []Task{waitsOn(63)},
			conns:    []ConnState{conn(63, "fuse.a", true, 1), conn(64, "fuse.lxcfs", false, 2)},
			wantPlan: []fuseconn.ConnID{63},
		},
		{
			name:     "owned with requests waiting is a candidate even with nothing stuck in view",
			conns:    []ConnState{conn(65, "fuse.a", true, 1), conn(66, "fuse.lxcfs", false, 2)},
			wantPlan: []fuseconn.ConnID{65},
		},
		{
			name:  "healthy shared W5 mount is not even a candidate",
			conns: []ConnState{conn(70, "fuse.lxcfs", false, 0)},
		},
		{
			name:  "gone connection is not a candidate",
			stuck: []Task{waitsOn(80)},
			conns: []ConnState{func() ConnState { c := conn(80, "fuse", true, 1); c.Live = false; return c }()},
		},
		{
			name:  "nothing stuck, nothing waiting",
			conns: []ConnState{conn(90, "fuse", true, 0)},
		},
		{
			// The id-reuse break: the record says 49 is the container's
			// (owned), the host's connection now has id 49 and a reader.
			name:        "recorded owned connection replaced since: refused, the rest planned",
			stuck:       []Task{waitsOn(50)},
			conns:       []ConnState{unproven(conn(49, "fuse.a", true, 1), "connection 49 was replaced since it was recorded (generation 1234 → 1301): not the container's"), conn(50, "fuse.b", true, 1)},
			wantPlan:    []fuseconn.ConnID{50},
			wantRefused: []fuseconn.ConnID{49},
			wantReason:  "replaced since it was recorded",
		},
		{
			name:        "recorded connection in no live table: not aborted on the record's word, even with abort-shared",
			policy:      Policy{AbortShared: true},
			stuck:       []Task{flushing},
			conns:       []ConnState{unproven(conn(51, "fuse.a", true, 2), "connection 51 (generation 1051) is mounted in none of the container's live mount tables: not aborted on the record's word alone")},
			wantRefused: []fuseconn.ConnID{51},
			wantReason:  "record's word",
		},
		{
			name:        "unproven connection a stuck task's fd names is refused too",
			stuck:       []Task{waitsOn(52)},
			conns:       []ConnState{unproven(conn(52, "fuse.a", true, 1), "connection 52 changed while the container's mount tables were read: not proven the container's")},
			wantRefused: []fuseconn.ConnID{52},
			wantReason:  "not proven",
		},
		{
			// A read(fd of the shared mount, buf mapped from the own mount)
			// under a page fault: the diagnosis drops the fd evidence, so
			// the wait is unexplained and the own connection is a candidate.
			name:        "fd evidence refused under a page fault: own connection with waiting planned, shared refused",
			stuck:       []Task{{TID: 7, Comm: "reader", State: "D", Blocker: BlockerFUSERequest, Untrusted: "under a page fault"}},
			conns:       []ConnState{conn(53, "fuse.own", true, 1), conn(54, "fuse.lxcfs", false, 1)},
			wantPlan:    []fuseconn.ConnID{53},
			wantRefused: []fuseconn.ConnID{54},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, refused := tt.policy.plan(tt.stuck, tt.conns)
			if got := ids(plan); !slices.Equal(got, tt.wantPlan) {
				t.Errorf("plan = %v, want %v", got, tt.wantPlan)
			}
			if got := ids(refused); !slices.Equal(got, tt.wantRefused) {
				t.Errorf("refused = %v, want %v", got, tt.wantRefused)
			}
			for _, a := range refused {
				want := tt.wantReason
				if want == "" {
					want = "--allow-shared-fstype=" + a.FSType
				}
				if !strings.Contains(a.Reason, want) {
					t.Errorf("refusal of %d does not say %q: %q", a.Conn, want, a.Reason)
				}
				proven := slices.ContainsFunc(tt.conns, func(c ConnState) bool { return c.Conn == a.Conn && c.Proven })
				if a.Gen != 0 && !proven {
					t.Errorf("refusal of unproven %d carries generation %d", a.Conn, a.Gen)
				}
				if wantClass := map[bool]Refusal{true: RefusalShared, false: RefusalUnproven}[proven]; a.Refusal != wantClass {
					t.Errorf("refusal of %d (proven %v) classed %q, want %q", a.Conn, proven, a.Refusal, wantClass)
				}
			}
			for _, a := range plan {
				if a.Reason == "" || a.Refusal != "" {
					t.Errorf("planned abort of %d: reason %q, refusal %q", a.Conn, a.Reason, a.Refusal)
				}
				// An abort acts on the proven instance only.
				if a.Gen != fuseconn.Generation(1000+a.Conn) {
					t.Errorf("planned abort of %d has generation %d, want the proven %d", a.Conn, a.Gen, 1000+a.Conn)
				}
			}
		})
	}
}

// TestPolicyOwnershipUnknown: with the host's table unreadable nothing is
// owned: a connection a stuck task waits on, or with requests waiting, is
// refused with the reason, unless the operator allows shared ones anyway.
func TestPolicyOwnershipUnknown(t *testing.T) {
	unknown := func(id fuseconn.ConnID, waiting int) ConnState {
		c := conn(id, "fuse.ndrive", false, waiting)
		c.OwnershipUnknown = "host mount table unreadable: proc: read /proc/1/mountinfo: permission denied"
		return c
	}
	reader := Task{TID: 7, Comm: "rd\x1b[2J", State: "D", Blocker: BlockerFUSERequest, Conn: 41, HasConn: true, Via: "fd 3"}
	tests := []struct {
		name        string
		policy      Policy
		stuck       []Task
		wantPlan    []fuseconn.ConnID
		wantRefused []fuseconn.ConnID
	}{
		{name: "waited on: refused", stuck: []Task{reader}, wantRefused: []fuseconn.ConnID{41}},
		{name: "requests waiting, nothing stuck: not even a candidate"},
		{name: "requests waiting, unexplained stuck task: refused", stuck: []Task{{TID: 8, State: "D", Blocker: BlockerFUSEFlush}}, wantRefused: []fuseconn.ConnID{41, 42}},
		{name: "abort-shared takes the risk", policy: Policy{AbortShared: true}, stuck: []Task{reader}, wantPlan: []fuseconn.ConnID{41}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, refused := tt.policy.plan(tt.stuck, []ConnState{unknown(41, 1), unknown(42, 2)})
			if got := ids(plan); !slices.Equal(got, tt.wantPlan) {
				t.Errorf("plan = %v, want %v", got, tt.wantPlan)
			}
			if got := ids(refused); !slices.Equal(got, tt.wantRefused) {
				t.Errorf("refused = %v, want %v", got, tt.wantRefused)
			}
			for _, a := range refused {
				if !strings.HasSuffix(a.Reason, "host mount table unreadable: proc: read /proc/1/mountinfo: permission denied: ownership unknown, not aborted") || a.Owned ||
					a.Refusal != RefusalOwnershipUnknown {
					t.Errorf("refusal of %d: %q", a.Conn, a.Reason)
				}
				if strings.Contains(a.Reason, "\x1b") {
					t.Errorf("reason holds the raw comm: %q", a.Reason)
				}
			}
		})
	}
}

func ids(as []Abort) []fuseconn.ConnID {
	var out []fuseconn.ConnID
	for _, a := range as {
		out = append(out, a.Conn)
	}
	return out
}

func TestUntrustedFD(t *testing.T) {
	frames := func(fns ...string) proc.Stack {
		var st proc.Stack
		for _, fn := range fns {
			st = append(st, proc.Frame{Function: fn})
		}
		return st
	}
	// Shapes of a FUSE wait: the fd's own file (direct I/O, buffered read)
	// versus a page of a mapped file faulted in on copy-out or pinned for
	// direct I/O.
	tests := []struct {
		name      string
		stack     proc.Stack
		untrusted bool
	}{
		{"direct read of the fd's file", frames("request_wait_answer", "__fuse_simple_request", "fuse_direct_io", "fuse_direct_read_iter", "vfs_read", "ksys_read"), false},
		{"buffered read of the fd's file", frames("request_wait_answer", "__fuse_simple_request", "fuse_read_folio", "filemap_read_folio", "filemap_read", "vfs_read"), false},
		{"copy-out faults on a mapped FUSE page", frames("request_wait_answer", "__fuse_simple_request", "fuse_read_folio", "filemap_read_folio", "filemap_fault", "__do_fault", "do_read_fault", "__handle_mm_fault", "handle_mm_fault", "do_user_addr_fault", "exc_page_fault", "asm_exc_page_fault", "_copy_to_iter", "vfs_read"), true},
		{"direct I/O pins a mapped FUSE page", frames("request_wait_answer", "fuse_read_folio", "filemap_fault", "handle_mm_fault", "__get_user_pages", "iov_iter_extract_pages", "fuse_get_user_pages", "fuse_direct_io", "vfs_read"), true},
		{"compiler clone of a fault frame", frames("request_wait_answer", "handle_mm_fault.cold"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := untrustedFD(tt.stack)
			if (why != "") != tt.untrusted {
				t.Fatalf("untrustedFD = %q, want untrusted %v", why, tt.untrusted)
			}
		})
	}
}

func TestSignalNames(t *testing.T) {
	tests := []struct {
		mask uint64
		want []string
	}{
		{0, nil},
		{0x100, []string{"SIGKILL"}},
		{0x100 | 0x4000, []string{"SIGKILL", "SIGTERM"}},
		{1 << 63, []string{"SIG64"}},
	}
	for _, tt := range tests {
		if got := signalNames(tt.mask); !slices.Equal(got, tt.want) {
			t.Errorf("signalNames(%#x) = %v, want %v", tt.mask, got, tt.want)
		}
	}
}
