package oci

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/fuseguard/fuseguard/test/testenv"
)

func writeBundle(t *testing.T, config string, mode fs.FileMode) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(config), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return dir, path
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestPatchBundle(t *testing.T) {
	hooks := HookSet{Path: testBinary, Timeout: 4}
	dir, path := writeBundle(t, futureConfig, 0o640)
	want, _, err := InjectHooks([]byte(futureConfig), hooks)
	if err != nil {
		t.Fatal(err)
	}

	changed, err := PatchBundle(dir, hooks)
	if err != nil || !changed {
		t.Fatalf("PatchBundle: changed=%v err=%v", changed, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("config.json = %s\nwant %s", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o640 {
		t.Errorf("mode = %v, want 0640", fi.Mode())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("bundle holds %v, want only config.json (temporary file left?)", entries)
	}

	// Second patch: nothing to do, the file is not even rewritten.
	ino := inode(t, path)
	changed, err = PatchBundle(dir, hooks)
	if err != nil || changed {
		t.Fatalf("second PatchBundle: changed=%v err=%v", changed, err)
	}
	if inode(t, path) != ino {
		t.Error("second PatchBundle replaced the file")
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, got) {
		t.Error("second PatchBundle changed the bytes")
	}
}

// TestPatchBundleTmpfs: a bundle on tmpfs (as under /run) is patched
// without syncs, and the same way.
func TestPatchBundleTmpfs(t *testing.T) {
	dir := testenv.TmpfsDir(t)
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(futureConfig), 0o640); err != nil {
		t.Fatal(err)
	}
	hooks := HookSet{Path: testBinary}
	want, _, err := InjectHooks([]byte(futureConfig), hooks)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := PatchBundle(dir, hooks); err != nil || !changed {
		t.Fatalf("PatchBundle: changed=%v err=%v", changed, err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("config.json = %s (%v)\nwant %s", got, err, want)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Fatalf("bundle holds %v (%v), want config.json alone", entries, err)
	}
}

func TestPatchBundleErrors(t *testing.T) {
	t.Run("no config.json", func(t *testing.T) {
		dir := t.TempDir()
		changed, err := PatchBundle(dir, HookSet{Path: testBinary})
		if !errors.Is(err, ErrNoConfig) || !errors.Is(err, fs.ErrNotExist) || changed {
			t.Errorf("changed=%v err=%v, want ErrNoConfig wrapping fs.ErrNotExist", changed, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("PatchBundle created %v", entries)
		}
	})
	t.Run("no bundle", func(t *testing.T) {
		_, err := PatchBundle(filepath.Join(t.TempDir(), "missing"), HookSet{Path: testBinary})
		if !errors.Is(err, ErrNoConfig) {
			t.Errorf("err = %v, want ErrNoConfig", err)
		}
	})
	t.Run("invalid config untouched", func(t *testing.T) {
		dir, path := writeBundle(t, `{"hooks":[]}`, 0o600)
		ino := inode(t, path)
		changed, err := PatchBundle(dir, HookSet{Path: testBinary})
		if !errors.Is(err, ErrInvalidConfig) || changed {
			t.Errorf("changed=%v err=%v, want ErrInvalidConfig", changed, err)
		}
		if got, _ := os.ReadFile(path); string(got) != `{"hooks":[]}` || inode(t, path) != ino {
			t.Errorf("invalid config.json was rewritten: %s", got)
		}
	})
	t.Run("config.json is a directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "config.json"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := PatchBundle(dir, HookSet{Path: testBinary}); err == nil || errors.Is(err, ErrNoConfig) {
			t.Errorf("err = %v, want a read error", err)
		}
	})
}

// TestPatchBundleOwner: a config.json owned by someone else (a rootless
// bundle patched by root) keeps its owner.
func TestPatchBundleOwner(t *testing.T) {
	testenv.RequireRoot(t)
	dir, path := writeBundle(t, `{}`, 0o600)
	if err := os.Chown(path, 4321, 8765); err != nil {
		t.Fatal(err)
	}
	if changed, err := PatchBundle(dir, HookSet{Path: testBinary}); err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4321 || st.Gid != 8765 || fi.Mode() != 0o600 {
		t.Errorf("owner %d:%d mode %v, want 4321:8765 0600", st.Uid, st.Gid, fi.Mode())
	}
}
