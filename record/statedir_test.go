package record

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// TestStateDirRefused: a state dir that is not private is refused by every
// Store operation, with one line naming the path and what is wrong.
func TestStateDirRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, dir string)
		want string
	}{
		{"mode 0755", func(t *testing.T, dir string) {
			mustNil(t, os.Mkdir(dir, 0o700))
			mustNil(t, os.Chmod(dir, 0o755))
		}, "has mode 0755, want 0700"},
		{"group writable", func(t *testing.T, dir string) {
			mustNil(t, os.Mkdir(dir, 0o700))
			mustNil(t, os.Chmod(dir, 0o770))
		}, "has mode 0770, want 0700"},
		{"other owner", func(t *testing.T, dir string) {
			testenv.RequireRoot(t)
			mustNil(t, os.Mkdir(dir, 0o700))
			mustNil(t, os.Chown(dir, 65534, 65534))
		}, "is owned by uid 65534, want 0"},
		{"symlink", func(t *testing.T, dir string) {
			real := dir + ".real"
			mustNil(t, os.Mkdir(real, 0o700))
			mustNil(t, os.Symlink(real, dir))
		}, "is a symlink, want a directory"},
		{"file", func(t *testing.T, dir string) {
			mustNil(t, os.WriteFile(dir, nil, 0o600))
		}, "is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			tc.make(t, dir)
			s := Store{Dir: dir}
			r := &Record{ID: "c1", InitPID: 1}
			errs := map[string]error{"Save": s.Save(r)}
			_, errs["Load"] = s.Load("c1")
			_, errs["List"] = s.List()
			errs["Remove"] = s.Remove("c1")
			for op, err := range errs {
				if !errors.Is(err, ErrUnsafeStateDir) {
					t.Errorf("%s: %v, want ErrUnsafeStateDir", op, err)
					continue
				}
				if msg := err.Error(); !strings.Contains(msg, dir+" "+tc.want) || strings.Contains(msg, "\n") {
					t.Errorf("%s: %q, want one line with %q", op, msg, dir+" "+tc.want)
				}
			}
			if fileExistsAt(filepath.Join(dir, "c1.json")) {
				t.Error("a record was written into the refused dir")
			}
		})
	}
}

// TestStateDirCreatedPrivate: a missing state dir is created 0700 and then
// accepted, whatever the umask.
func TestStateDirCreatedPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "state")
	s := Store{Dir: dir}
	if err := s.Save(&Record{ID: "c1", InitPID: 1}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Fatalf("state dir %v, %v; want a directory 0700", fi.Mode(), err)
	}
	if err := CheckStateDir(dir); err != nil {
		t.Error(err)
	}
}

// TestLoadRefusesSymlinkedRecord: a record that is a symlink is not read.
func TestLoadRefusesSymlinkedRecord(t *testing.T) {
	dir := testenv.StateDir(t)
	s := Store{Dir: dir}
	mustNil(t, s.Save(&Record{ID: "real", InitPID: 1}))
	mustNil(t, os.Symlink(filepath.Join(dir, "real.json"), filepath.Join(dir, "c1.json")))
	if _, err := s.Load("c1"); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Load of a symlinked record: %v, want refused", err)
	}
}

// TestListRemovesStaleTemps: List removes the temporary files that
// interrupted saves left (older than a minute), and keeps a fresh one (a
// save in progress), the records and anything not named like a temporary.
func TestListRemovesStaleTemps(t *testing.T) {
	dir := testenv.StateDir(t)
	s := Store{Dir: dir}
	mustNil(t, s.Save(&Record{ID: "c1", InitPID: 1}))
	old := time.Now().Add(-2 * staleTempAge)
	stale := filepath.Join(dir, tempPrefix+"123")
	fresh := filepath.Join(dir, tempPrefix+"456")
	other := filepath.Join(dir, ".other")
	for _, p := range []string{stale, fresh, other} {
		mustNil(t, os.WriteFile(p, []byte("{"), 0o600))
	}
	mustNil(t, os.Chtimes(stale, old, old))
	mustNil(t, os.Chtimes(other, old, old))
	recs, err := s.List()
	if err != nil || len(recs) != 1 || recs[0].ID != "c1" {
		t.Fatalf("List: %v, %v", recs, err)
	}
	if fileExistsAt(stale) {
		t.Error("stale temporary file kept")
	}
	for _, p := range []string{fresh, other, filepath.Join(dir, "c1.json")} {
		if !fileExistsAt(p) {
			t.Errorf("%s removed", filepath.Base(p))
		}
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fileExistsAt(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
