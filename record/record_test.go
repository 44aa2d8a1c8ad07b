package record

import (
	"slices"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
)

func fuseMount(id int, conn fuseconn.ConnID, mp string) fuseconn.Mount {
	return fuseconn.Mount{MountID: id, Minor: int(conn), Conn: conn, MountPoint: mp, FSType: "fuse.t", Subtype: "t", Source: "t"}
}

func TestRecordMerge(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	conn := func(c fuseconn.ConnID, owned bool) fuseconn.Connection {
		return fuseconn.Connection{Mount: fuseMount(int(c)+100, c, "/m"), Owned: owned}
	}
	r := &Record{Version: RecordVersion, ID: "c1", Created: t0, Updated: t0}

	steps := []struct {
		at        time.Time
		conns     []fuseconn.Connection
		wantAdded int
		want      []fuseconn.ConnID // recorded, in order
		updated   time.Time
	}{
		{t1, []fuseconn.Connection{conn(41, true), conn(61, false)}, 2, []fuseconn.ConnID{41, 61}, t1},
		{t2, []fuseconn.Connection{conn(61, false), conn(70, true)}, 1, []fuseconn.ConnID{41, 61, 70}, t2},
		// Everything unmounted: nothing is forgotten, nothing changed.
		{t3, nil, 0, []fuseconn.ConnID{41, 61, 70}, t2},
		{t3, []fuseconn.Connection{conn(41, true), conn(41, true)}, 0, []fuseconn.ConnID{41, 61, 70}, t2},
	}
	for i, s := range steps {
		if got := r.Merge(s.conns, s.at); got != s.wantAdded {
			t.Fatalf("step %d: Merge added %d, want %d", i, got, s.wantAdded)
		}
		if len(r.Connections) != len(s.want) {
			t.Fatalf("step %d: %d connections %+v, want %v", i, len(r.Connections), r.Connections, s.want)
		}
		for j, c := range r.Connections {
			if c.Conn != s.want[j] {
				t.Fatalf("step %d: connection %d is %d, want %d", i, j, c.Conn, s.want[j])
			}
		}
		if !r.Updated.Equal(s.updated) {
			t.Fatalf("step %d: Updated %v, want %v", i, r.Updated, s.updated)
		}
	}

	// FirstSeen is when a connection first appeared, not when it was last seen.
	for _, w := range []struct {
		id    fuseconn.ConnID
		first time.Time
		owned bool
	}{{41, t1, true}, {61, t1, false}, {70, t2, true}} {
		got, ok := r.Lookup(w.id)
		if !ok {
			t.Fatalf("Lookup(%d) missing", w.id)
		}
		if !got.FirstSeen.Equal(w.first) || got.Owned != w.owned || got.Conn != w.id {
			t.Errorf("Lookup(%d) = %+v, want FirstSeen %v owned %v", w.id, got, w.first, w.owned)
		}
	}
	if got, ok := r.Lookup(99); ok {
		t.Errorf("Lookup(99) = %+v, true; want false", got)
	}
	if !r.Created.Equal(t0) {
		t.Errorf("Created changed to %v", r.Created)
	}
}

// TestRecordMergeInstances: an id is recorded once per proven instance; an
// unproven sighting adds nothing when the id is recorded.
func TestRecordMergeInstances(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	inst := func(c fuseconn.ConnID, gen fuseconn.Generation) fuseconn.Connection {
		return fuseconn.Connection{Mount: fuseMount(int(c)+100, c, "/m"), Owned: true, Gen: gen}
	}
	tests := []struct {
		name      string
		have      []fuseconn.Connection
		add       []fuseconn.Connection
		wantAdded int
		want      []fuseconn.ConnRef
	}{
		{"new id", nil, []fuseconn.Connection{inst(41, 7)}, 1, []fuseconn.ConnRef{{ID: 41, Gen: 7}}},
		{"same instance again", []fuseconn.Connection{inst(41, 7)}, []fuseconn.Connection{inst(41, 7)}, 0, []fuseconn.ConnRef{{ID: 41, Gen: 7}}},
		{"id reused by a new instance of the container", []fuseconn.Connection{inst(41, 7)}, []fuseconn.Connection{inst(41, 9)}, 1, []fuseconn.ConnRef{{ID: 41, Gen: 7}, {ID: 41, Gen: 9}}},
		{"unproven sighting of a recorded id", []fuseconn.Connection{inst(41, 7)}, []fuseconn.Connection{inst(41, 0)}, 0, []fuseconn.ConnRef{{ID: 41, Gen: 7}}},
		{"unproven new id", nil, []fuseconn.Connection{inst(42, 0)}, 1, []fuseconn.ConnRef{{ID: 42, Gen: 0}}},
		{"proven sighting of an unproven id", []fuseconn.Connection{inst(42, 0)}, []fuseconn.Connection{inst(42, 5)}, 1, []fuseconn.ConnRef{{ID: 42, Gen: 0}, {ID: 42, Gen: 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Version: RecordVersion, ID: "c"}
			r.Merge(tt.have, at)
			if got := r.Merge(tt.add, at); got != tt.wantAdded {
				t.Errorf("Merge added %d, want %d", got, tt.wantAdded)
			}
			var got []fuseconn.ConnRef
			for _, c := range r.Connections {
				got = append(got, c.Ref())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("recorded %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMergeSettlesUnknownOwnership: a connection recorded while the host
// table was unreadable is classified by a later reading of the same mount,
// and a known classification is never made unknown again.
func TestMergeSettlesUnknownOwnership(t *testing.T) {
	now := time.Unix(1000, 0)
	m := fuseconn.Mount{MountID: 91, Conn: 41, FSType: "fuse.a"}
	r := &Record{}
	r.Merge([]fuseconn.Connection{{Mount: m, OwnershipUnknown: "host mount table unreadable: x"}}, now)
	if n := r.Merge([]fuseconn.Connection{{Mount: fuseconn.Mount{MountID: 77, Conn: 41}, Owned: true}}, now); n != 0 || r.Connections[0].OwnershipUnknown == "" {
		t.Fatalf("another mount with the same id settled the record: %+v", r.Connections)
	}
	if n := r.Merge([]fuseconn.Connection{{Mount: m, Owned: true}}, now); n != 1 || !r.Connections[0].Owned || r.Connections[0].OwnershipUnknown != "" {
		t.Fatalf("the same mount read later: %d, %+v", n, r.Connections)
	}
	if n := r.Merge([]fuseconn.Connection{{Mount: m, OwnershipUnknown: "host mount table unreadable: y"}}, now); n != 0 || !r.Connections[0].Owned {
		t.Fatalf("known ownership made unknown: %+v", r.Connections)
	}
}
