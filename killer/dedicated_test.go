package killer

import (
	"slices"
	"strings"
	"testing"

	"github.com/fuseguard/fuseguard/fuseconn"
)

// TestPolicyPlanDedicated: a dedicated connection is planned like an owned
// one (waited on, or with requests waiting), a shared one the dedicated
// check refused is kept as not-dedicated with its reason, and a shared one
// the check never looked at stays plain shared.
func TestPolicyPlanDedicated(t *testing.T) {
	dedicated := func(id fuseconn.ConnID, waiting int) ConnState {
		c := conn(id, "fuse.gcsfuse", false, waiting)
		c.Dedicated, c.Dedication = true, "dedicated to pod 0b1e7c6a-4b9d-4f5e-9a53-2d8c1f0e6b7a: mounted on the host only under …"
		return c
	}
	notDedicated := func(id fuseconn.ConnID, waiting int, why string) ConnState {
		c := conn(id, "fuse.gcsfuse", false, waiting)
		c.Dedication = why
		return c
	}
	reader := func(id fuseconn.ConnID) Task {
		return Task{TID: 100 + int(id), Comm: "reader", State: "D", Blocker: BlockerFUSERequest, Conn: id, HasConn: true, Via: "fd 3"}
	}
	tests := []struct {
		name        string
		stuck       []Task
		conns       []ConnState
		wantPlan    []fuseconn.ConnID
		wantRefused map[fuseconn.ConnID]Refusal
		wantReason  string // in every refusal
	}{
		{name: "dedicated and waited on: planned", stuck: []Task{reader(10)}, conns: []ConnState{dedicated(10, 1)}, wantPlan: []fuseconn.ConnID{10}},
		{name: "dedicated with requests waiting, nothing stuck in view: planned like owned", conns: []ConnState{dedicated(11, 2)}, wantPlan: []fuseconn.ConnID{11}},
		{name: "dedicated and healthy: not a candidate", conns: []ConnState{dedicated(12, 0)}},
		{
			name:        "used by another pod's container: refused, saying so",
			stuck:       []Task{reader(13)},
			conns:       []ConnState{notDedicated(13, 1, "not dedicated to pod x: used by another live container c2")},
			wantRefused: map[fuseconn.ConnID]Refusal{13: RefusalNotDedicated},
			wantReason:  "used by another live container c2",
		},
		{
			name:        "mounted outside the volume dir: refused, saying so",
			stuck:       []Task{reader(14)},
			conns:       []ConnState{notDedicated(14, 1, "not dedicated to pod x: mounted outside the pod's volume dir (host mount at /srv)")},
			wantRefused: map[fuseconn.ConnID]Refusal{14: RefusalNotDedicated},
			wantReason:  "mounted outside the pod's volume dir",
		},
		{
			name:        "not dedicated with requests waiting, every stuck task explained: not a candidate",
			stuck:       []Task{reader(15)},
			conns:       []ConnState{dedicated(15, 1), notDedicated(16, 3, "not dedicated: …")},
			wantPlan:    []fuseconn.ConnID{15},
			wantRefused: map[fuseconn.ConnID]Refusal{},
		},
		{
			name:        "class off: shared as before",
			stuck:       []Task{reader(17)},
			conns:       []ConnState{conn(17, "fuse.gcsfuse", false, 1)},
			wantRefused: map[fuseconn.ConnID]Refusal{17: RefusalShared},
			wantReason:  "shared with the host",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, refused := Policy{DedicatedPrefixes: []string{"/var/lib/kubelet/pods"}}.plan(tt.stuck, tt.conns)
			if got := ids(plan); !slices.Equal(got, tt.wantPlan) {
				t.Errorf("plan = %v, want %v", got, tt.wantPlan)
			}
			for _, a := range plan {
				if !a.Dedicated || !strings.Contains(a.Reason, "dedicated to pod") {
					t.Errorf("planned %d: dedicated %v, reason %q: want the class named", a.Conn, a.Dedicated, a.Reason)
				}
			}
			if len(refused) != len(tt.wantRefused) {
				t.Errorf("refused = %v, want %v", ids(refused), tt.wantRefused)
			}
			for _, a := range refused {
				if want, ok := tt.wantRefused[a.Conn]; !ok || a.Refusal != want {
					t.Errorf("refusal of %d classed %q, want %q", a.Conn, a.Refusal, want)
				}
				if !strings.Contains(a.Reason, tt.wantReason) {
					t.Errorf("refusal of %d does not say %q: %q", a.Conn, tt.wantReason, a.Reason)
				}
			}
		})
	}
}
