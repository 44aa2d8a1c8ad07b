package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuseguard/fuseguard/test/testenv"
)

func TestCheckStateDir(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		name   string
		make   func(t *testing.T) string
		status Status
		detail string
	}{
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "state") }, OK, "does not exist yet"},
		{"0700", func(t *testing.T) string { return testenv.StateDir(t) }, OK, "mode 0700"},
		{"0755", func(t *testing.T) string {
			d := testenv.StateDir(t)
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
			return d
		}, Fail, "has mode 0755"},
		{"symlink", func(t *testing.T) string {
			l := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(testenv.StateDir(t), l); err != nil {
				t.Fatal(err)
			}
			return l
		}, Fail, "is a symlink"},
		{"not root's", func(t *testing.T) string {
			d := testenv.StateDir(t)
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return d
		}, Fail, "owned by uid 65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := CheckStateDir(tc.make(t))
			assertCheck(t, c, tc.status, []string{tc.detail})
		})
	}
}

// TestCheckKernelTimeouts reads the sysctl files from a directory laid out
// like /proc/sys/fs/fuse: absent (before Linux 6.15), set, off.
func TestCheckKernelTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		def, max string // "" means no file
		status   Status
		detail   []string
	}{
		{name: "absent", status: OK, detail: []string{"not available on this kernel"}},
		{name: "off", def: "0\n", max: "0\n", status: OK,
			detail: []string{"default_request_timeout=0 (off)", "max_request_timeout=0 (off)", "fuseguard aborts only the stuck container's own connections"}},
		{name: "set", def: "30\n", max: "600\n", status: OK, detail: []string{"default_request_timeout=30s", "max_request_timeout=600s"}},
		{name: "garbage", def: "x\n", max: "0\n", status: Warn, detail: []string{"default_request_timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.def != "" {
				writeFile(t, dir, sysctlDefaultTimeout, tc.def, 0o644)
			}
			if tc.max != "" {
				writeFile(t, dir, sysctlMaxTimeout, tc.max, 0o644)
			}
			c := CheckKernelTimeouts(dir)
			assertCheck(t, c, tc.status, tc.detail)
			if strings.Contains(c.Detail, "\n") {
				t.Errorf("detail spans lines: %q", c.Detail)
			}
		})
	}
}
