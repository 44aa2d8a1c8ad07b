package killer

import (
	"slices"
	"strings"
	"testing"

	"github.com/fuseguard/fuseguard/fuseguard"
)

func conn(id fuseguard.ConnID, fstype string, owned bool, waiting int) ConnState {
	return ConnState{
		Connection: fuseguard.Connection{
			Mount: fuseguard.Mount{Conn: id, FSType: fstype, MountPoint: "/mnt/" + id.String()},
			Owned: owned,
		},
		Waiting: waiting,
		Live:    true,
	}
}

func TestPolicyPlan(t *testing.T) {
	waitsOn := func(id fuseguard.ConnID) Task {
		return Task{TID: 100 + int(id), Comm: "reader", State: "D", Blocker: BlockerFUSERequest, Conn: id, HasConn: true, Via: "fd 3"}
	}
	flushing := Task{TID: 99, Comm: "holder", State: "D", Blocker: BlockerFUSEFlush}
	tests := []struct {
		name        string
		policy      Policy
		stuck       []Task
		conns       []ConnState
		wantPlan    []fuseguard.ConnID
		wantRefused []fuseguard.ConnID
	}{
		{
			name:     "owned connection a stuck task waits on",
			stuck:    []Task{waitsOn(41)},
			conns:    []ConnState{conn(41, "fuse.ndrive", true, 1)},
			wantPlan: []fuseguard.ConnID{41},
		},
		{
			name:     "provable first, then owned with waiting, healthy owned untouched",
			stuck:    []Task{waitsOn(50)},
			conns:    []ConnState{conn(49, "fuse.a", true, 2), conn(50, "fuse.b", true, 1), conn(51, "fuse.c", true, 0)},
			wantPlan: []fuseguard.ConnID{50, 49},
		},
		{
			name:        "shared connection refused by default even when provably waited on",
			stuck:       []Task{waitsOn(60)},
			conns:       []ConnState{conn(60, "fuse.lxcfs", false, 1)},
			wantRefused: []fuseguard.ConnID{60},
		},
		{
			name:     "shared allowed by fs type, while a flush at exit names no connection",
			policy:   Policy{AllowSharedFSTypes: []string{"fuse.hostfs"}},
			stuck:    []Task{flushing},
			conns:    []ConnState{conn(61, "fuse.hostfs", false, 1), conn(62, "fuse.lxcfs", false, 3)},
			wantPlan: []fuseguard.ConnID{61}, wantRefused: []fuseguard.ConnID{62},
		},
		{
			name:     "abort-shared allows every shared one",
			policy:   Policy{AbortShared: true},
			stuck:    []Task{flushing},
			conns:    []ConnState{conn(62, "fuse.lxcfs", false, 3)},
			wantPlan: []fuseguard.ConnID{62},
		},
		{
			name:     "shared with requests waiting is not a candidate when every stuck task is explained",
			policy:   Policy{AbortShared: true},
			stuck:    []Task{waitsOn(63)},
			conns:    []ConnState{conn(63, "fuse.a", true, 1), conn(64, "fuse.lxcfs", false, 2)},
			wantPlan: []fuseguard.ConnID{63},
		},
		{
			name:     "owned with requests waiting is a candidate even with nothing stuck in view",
			conns:    []ConnState{conn(65, "fuse.a", true, 1), conn(66, "fuse.lxcfs", false, 2)},
			wantPlan: []fuseguard.ConnID{65},
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
				if !strings.Contains(a.Reason, "--allow-shared-fstype="+a.FSType) {
					t.Errorf("refusal of %d does not say how to allow it: %q", a.Conn, a.Reason)
				}
			}
			for _, a := range plan {
				if a.Reason == "" {
					t.Errorf("planned abort of %d has no reason", a.Conn)
				}
			}
		})
	}
}

// TestPolicyOwnershipUnknown: with the host's table unreadable nothing is
// owned: a connection a stuck task waits on, or with requests waiting, is
// refused with the reason, unless the operator allows shared ones anyway.
func TestPolicyOwnershipUnknown(t *testing.T) {
	unknown := func(id fuseguard.ConnID, waiting int) ConnState {
		c := conn(id, "fuse.ndrive", false, waiting)
		c.OwnershipUnknown = "host mount table unreadable: proc: read /proc/1/mountinfo: permission denied"
		return c
	}
	reader := Task{TID: 7, Comm: "rd\x1b[2J", State: "D", Blocker: BlockerFUSERequest, Conn: 41, HasConn: true, Via: "fd 3"}
	tests := []struct {
		name        string
		policy      Policy
		stuck       []Task
		wantPlan    []fuseguard.ConnID
		wantRefused []fuseguard.ConnID
	}{
		{name: "waited on: refused", stuck: []Task{reader}, wantRefused: []fuseguard.ConnID{41}},
		{name: "requests waiting, nothing stuck: not even a candidate"},
		{name: "requests waiting, unexplained stuck task: refused", stuck: []Task{{TID: 8, State: "D", Blocker: BlockerFUSEFlush}}, wantRefused: []fuseguard.ConnID{41, 42}},
		{name: "abort-shared takes the risk", policy: Policy{AbortShared: true}, stuck: []Task{reader}, wantPlan: []fuseguard.ConnID{41}},
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
				if !strings.HasSuffix(a.Reason, "host mount table unreadable: proc: read /proc/1/mountinfo: permission denied: ownership unknown, not aborted") || a.Owned {
					t.Errorf("refusal of %d: %q", a.Conn, a.Reason)
				}
				if strings.Contains(a.Reason, "\x1b") {
					t.Errorf("reason holds the raw comm: %q", a.Reason)
				}
			}
		})
	}
}

func ids(as []Abort) []fuseguard.ConnID {
	var out []fuseguard.ConnID
	for _, a := range as {
		out = append(out, a.Conn)
	}
	return out
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
