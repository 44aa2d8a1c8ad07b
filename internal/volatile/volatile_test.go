package volatile

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/test/testenv"
)

func TestDir(t *testing.T) {
	mem := testenv.TmpfsDir(t)
	if !Dir(mem) {
		t.Errorf("Dir(%s) = false on a tmpfs", mem)
	}
	// The test's own temporary directory is on whatever TMPDIR is; only
	// assert when statfs says it is no tmpfs or ramfs.
	var st unix.Statfs_t
	if err := unix.Statfs(t.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	if disk := st.Type != unix.TMPFS_MAGIC && st.Type != unix.RAMFS_MAGIC; disk && Dir(t.TempDir()) {
		t.Errorf("Dir(%s) = true on f_type %#x", t.TempDir(), st.Type)
	}
	if Dir(filepath.Join(mem, "missing")) {
		t.Error("Dir of a missing path = true, want false (sync when unsure)")
	}
}
