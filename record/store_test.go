package record

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/test/testenv"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"c1", true},
		{"4f2a9c0e1b7d3a5c6e8f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d", true},
		{"my_container-1.2", true},
		{"a..b", true},
		{"x" + strings.Repeat("a", MaxIDLen-1), true},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"/abs", false},
		{".hidden", false},
		{strings.Repeat("a", 2000), false},
		{strings.Repeat("a", MaxIDLen+1), false},
		{"héllo", false},
		{"容器", false},
		{"a b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{`a\b`, false},
		{"a:b", false},
		{"*", false},
	}
	for _, tt := range tests {
		name := tt.id
		if len(name) > 20 {
			name = name[:20] + "..."
		}
		t.Run(name, func(t *testing.T) {
			err := ValidateID(tt.id)
			if tt.ok && err != nil {
				t.Fatalf("ValidateID(%q) = %v, want nil", tt.id, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidID) {
				t.Fatalf("ValidateID(%q) = %v, want ErrInvalidID", tt.id, err)
			}
		})
	}
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"c1", "", ".", "..", "../x", "a/b", ".hidden", "a..b", "héllo", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateID(id)
		if err != nil {
			if !errors.Is(err, ErrInvalidID) {
				t.Fatalf("ValidateID(%q): %v does not wrap ErrInvalidID", id, err)
			}
			return
		}
		if id == "." || id == ".." || strings.ContainsAny(id, "/\x00") || strings.HasPrefix(id, ".") {
			t.Fatalf("ValidateID accepted %q", id)
		}
		name := id + ".json"
		if filepath.Base(name) != name || filepath.Clean(name) != name || len(name) > 255 {
			t.Fatalf("ValidateID accepted %q, which is no plain file name", id)
		}
	})
}

func testRecord(id string, pid int, start uint64, at time.Time) *Record {
	return &Record{
		Version:       RecordVersion,
		ID:            id,
		InitPID:       pid,
		InitStartTime: start,
		PidNS:         4026532001,
		MntNS:         4026532002,
		Cgroup:        "/system.slice/docker-" + id + ".scope",
		Bundle:        "/run/containerd/" + id,
		TraceParent:   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		Connections: []RecordedConnection{
			{Connection: fuseconn.Connection{Mount: fuseMount(91, 41, "/mnt/ndrive"), Owned: true}, FirstSeen: at},
			{Connection: fuseconn.Connection{Mount: fuseMount(92, 61, "/proc/cpuinfo")}, FirstSeen: at.Add(time.Second)},
		},
		Created: at,
		Updated: at.Add(time.Second),
	}
}

func TestNewStore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvStateDir, dir)
	if got := NewStore("").Dir; got != dir {
		t.Errorf("NewStore(\"\") with $%s = %q, want %q", EnvStateDir, got, dir)
	}
	if got := NewStore("/x").Dir; got != "/x" {
		t.Errorf("NewStore(/x).Dir = %q", got)
	}
	t.Setenv(EnvStateDir, "")
	if got := NewStore("").Dir; got != DefaultStateDir {
		t.Errorf("NewStore(\"\") = %q, want %q", got, DefaultStateDir)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "state", "nested"))
	at := time.Date(2025, 6, 7, 8, 9, 10, 11, time.UTC)
	want := testRecord("c1", 4242, 123456, at)
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("c1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v\nwant %+v", got, want)
	}

	// Modes: the records can name processes and mounts; root only.
	st, err := os.Stat(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
	st, err = os.Stat(filepath.Join(s.Dir, "c1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}

	// Overwrite: the second Save replaces the first, leaving no temp file.
	want.Merge([]fuseconn.Connection{{Mount: fuseMount(93, 70, "/b"), Owned: true}}, at.Add(time.Hour))
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err = s.Load("c1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || len(got.Connections) != 3 {
		t.Fatalf("Load after overwrite = %+v\nwant %+v", got, want)
	}
	assertDirHolds(t, s.Dir, "c1.json")
}

// assertDirHolds checks that dir holds exactly names: no temporary files.
func assertDirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, names) {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
}

func TestStoreSaveZeroVersion(t *testing.T) {
	s := NewStore(testenv.StateDir(t))
	r := testRecord("c1", 1, 2, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	r.Version = 0
	if err := s.Save(r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != RecordVersion {
		t.Fatalf("saved version %d, want %d", got.Version, RecordVersion)
	}
	if r.Version != 0 {
		t.Fatalf("Save changed the caller's record")
	}
}

// TestStoreSaveTmpfs: on tmpfs the record is written without syncs, and
// still replaced whole.
func TestStoreSaveTmpfs(t *testing.T) {
	s := NewStore(testenv.TmpfsDir(t))
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, pid := range []int{1, 2} {
		if err := s.Save(testRecord("c1", pid, 2, at)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load("c1")
		if err != nil || got.InitPID != pid {
			t.Fatalf("after saving init %d: %+v, %v", pid, got, err)
		}
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("state dir holds %v (%v), want the record alone", entries, err)
	}
}

func TestStoreErrors(t *testing.T) {
	s := NewStore(testenv.StateDir(t))
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	_, err := s.Load("missing")
	if !errors.Is(err, ErrNoRecord) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNoRecord and fs.ErrNotExist", err)
	}
	for _, id := range []string{"../x", "", "a/b", ".hidden"} {
		if _, err := s.Load(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Load(%q) = %v, want ErrInvalidID", id, err)
		}
		if err := s.Remove(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Remove(%q) = %v, want ErrInvalidID", id, err)
		}
		if err := s.Save(testRecord(id, 1, 1, at)); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Save(%q) = %v, want ErrInvalidID", id, err)
		}
	}
	future := testRecord("future", 1, 1, at)
	future.Version = RecordVersion + 1
	if err := s.Save(future); !errors.Is(err, ErrRecordVersion) {
		t.Errorf("Save(version %d) = %v, want ErrRecordVersion", future.Version, err)
	}

	// Files written by someone else: another version, corrupt, wrong id.
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("v3.json", `{"version":3,"id":"v3","connections":"a new shape"}`)
	write("corrupt.json", `{"version":1,"id":"corr`)
	write("wrongid.json", `{"version":1,"id":"other","connections":[]}`)

	if _, err := s.Load("v3"); !errors.Is(err, ErrRecordVersion) {
		t.Errorf("Load(v3) = %v, want ErrRecordVersion", err)
	}
	if _, err := s.Load("corrupt"); err == nil || errors.Is(err, ErrNoRecord) {
		t.Errorf("Load(corrupt) = %v, want a decode error", err)
	}
	if _, err := s.Load("wrongid"); err == nil || !strings.Contains(err.Error(), "other") {
		t.Errorf("Load(wrongid) = %v, want an id mismatch", err)
	}
	if err := s.Remove("missing"); err != nil {
		t.Errorf("Remove(missing) = %v, want nil", err)
	}
}

func TestStoreList(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewStore(filepath.Join(t.TempDir(), "state"))

	recs, err := s.List()
	if err != nil || len(recs) != 0 {
		t.Fatalf("List of a missing dir = %v, %v; want none", recs, err)
	}

	a, b := testRecord("a", 100, 1000, at), testRecord("b", 200, 2000, at)
	for _, r := range []*Record{b, a} {
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	recs, err = s.List()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recs, []*Record{a, b}) {
		t.Fatalf("List = %+v, want a, b", recs)
	}

	// Leftovers of a crash during Save, and files that are no records,
	// are skipped; a corrupt record is named but hides nothing.
	for name, body := range map[string]string{
		".tmp-123456":  `{"version":1,"id":"a"`,
		"notes.txt":    "hello",
		"corrupt.json": "{",
	} {
		if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "dir.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	recs, err = s.List()
	if err == nil || !strings.Contains(err.Error(), filepath.Join(s.Dir, "corrupt.json")) {
		t.Fatalf("List error = %v, want one naming corrupt.json", err)
	}
	if strings.Contains(err.Error(), ".tmp-123456") || strings.Contains(err.Error(), "notes.txt") || strings.Contains(err.Error(), "dir.json") {
		t.Fatalf("List error %v names a file that is no record", err)
	}
	if !reflect.DeepEqual(recs, []*Record{a, b}) {
		t.Fatalf("List with a corrupt file = %+v, want a, b", recs)
	}

	// Find by pid skips the corrupt file when it finds a match.
	got, err := s.Find(Query{PID: 200, StartTime: 2000})
	if err != nil || got.ID != "b" {
		t.Fatalf("Find(pid 200, 2000) = %+v, %v; want b", got, err)
	}
	got, err = s.Find(Query{PID: 100, StartTime: 0})
	if err != nil || got.ID != "a" {
		t.Fatalf("Find(pid 100, 0) = %+v, %v; want a", got, err)
	}
	// The pid was reused by another process: no record.
	if got, err := s.Find(Query{PID: 200, StartTime: 2001}); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("Find(pid 200, 2001) = %+v, %v; want ErrNoRecord", got, err)
	}
	if got, err := s.Find(Query{PID: 300, StartTime: 0}); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("Find(pid 300, 0) = %+v, %v; want ErrNoRecord", got, err)
	}

	if err := s.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("a"); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("Load after Remove = %v, want ErrNoRecord", err)
	}
}

func TestStoreFindByInitNewest(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewStore(testenv.StateDir(t))
	old, cur := testRecord("old", 100, 1, at), testRecord("cur", 100, 2, at.Add(time.Hour))
	for _, r := range []*Record{old, cur} {
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Find(Query{PID: 100, StartTime: 0})
	if err != nil || got.ID != "cur" {
		t.Fatalf("Find(pid 100, 0) = %+v, %v; want the record updated last", got, err)
	}
}

// TestStoreLoadVersions loads records as earlier builds wrote them: a
// version 1 record has no generations, so its connections load unproven
// (generation 0), and saving it upgrades it.
func TestStoreLoadVersions(t *testing.T) {
	const conn = `{"mount_id":120,"major":0,"minor":49,"conn":49,"mount_point":"/m","fs_type":"fuse.a","source":"a","owned":true%s,"first_seen":"2025-01-01T00:00:00Z"}`
	tests := []struct {
		name    string
		body    string
		wantErr error
		wantGen fuseconn.Generation
	}{
		{"version 1: unproven", `{"version":1,"id":"c","connections":[` + fmt.Sprintf(conn, "") + `]}`, nil, 0},
		{"version 2 with a generation", `{"version":2,"id":"c","connections":[` + fmt.Sprintf(conn, `,"gen":1234`) + `]}`, nil, 1234},
		{"version 2 without one", `{"version":2,"id":"c","connections":[` + fmt.Sprintf(conn, "") + `]}`, nil, 0},
		{"version 0", `{"version":0,"id":"c","connections":[]}`, ErrRecordVersion, 0},
		{"no version", `{"id":"c","connections":[]}`, ErrRecordVersion, 0},
		{"a future version", `{"version":3,"id":"c","connections":[]}`, ErrRecordVersion, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore(filepath.Join(t.TempDir(), "state"))
			if err := EnsureStateDir(s.Dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.Dir, "c.json"), []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := s.Load("c")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Load = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rc, ok := r.Lookup(49)
			if !ok || rc.Gen != tt.wantGen || !rc.Owned {
				t.Fatalf("connection 49 = %+v (found %v), want owned, generation %d", rc, ok, tt.wantGen)
			}
			if err := s.Save(r); err != nil {
				t.Fatalf("Save of a loaded version %d record: %v", r.Version, err)
			}
			again, err := s.Load("c")
			if err != nil {
				t.Fatal(err)
			}
			if again.Version != RecordVersion {
				t.Errorf("saved as version %d, want %d", again.Version, RecordVersion)
			}
			if rc, _ := again.Lookup(49); rc.Gen != tt.wantGen {
				t.Errorf("generation %d after a save, want %d", rc.Gen, tt.wantGen)
			}
		})
	}
}

func TestStoreWriteFile(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "state")}
	if err := s.WriteFile("watch.state", []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Dir, "watch.state")); err != nil || string(b) != "x\n" {
		t.Errorf("read back %q, %v", b, err)
	}
	// Never a record, a temporary file or a path elsewhere.
	for _, name := range []string{"", "c.json", ".tmp-x", "../x", "a/b"} {
		if err := s.WriteFile(name, nil); err == nil {
			t.Errorf("WriteFile(%q) accepted", name)
		}
	}
	recs, err := s.List()
	if err != nil || len(recs) != 0 {
		t.Errorf("List after WriteFile: %v, %v", recs, err)
	}
}

// TestStoreStamps: a record's stamp changes with every Save and only then;
// Stamps lists what List lists, without reading the files.
func TestStoreStamps(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "state"))
	at := time.Unix(1700000000, 0).UTC()
	for _, id := range []string{"b", "a"} {
		if err := s.Save(testRecord(id, 10, 20, at)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.Stamps()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0].ID != "a" || first[1].ID != "b" {
		t.Fatalf("Stamps = %+v, want a and b in order", first)
	}
	for _, f := range first {
		if f.Stamp == (Stamp{}) {
			t.Fatalf("%s: zero stamp", f.ID)
		}
	}
	again, err := s.Stamps()
	if err != nil || !slices.Equal(again, first) {
		t.Fatalf("Stamps of unchanged records = %+v (err %v), want %+v", again, err, first)
	}
	// Saving the same content again is a new file: the stamp changes.
	if err := s.Save(testRecord("b", 10, 20, at)); err != nil {
		t.Fatal(err)
	}
	after, err := s.Stamps()
	if err != nil {
		t.Fatal(err)
	}
	if after[0] != first[0] {
		t.Errorf("a's stamp changed to %+v without a save", after[0])
	}
	if after[1].Stamp == first[1].Stamp {
		t.Errorf("b's stamp %+v unchanged after a save", after[1].Stamp)
	}
}
