package killer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fuseguard/fuseguard/proc"
)

// The captures are real stacks from Linux 6.1 (fuse as a module) and 6.18.
func TestClassifyCaptures(t *testing.T) {
	tests := []struct {
		file   string
		want   BlockerKind
		inZap  bool
		frames int // minimum
	}{
		{"linux-6.1-fuse_flush-at-exit.stack", BlockerFUSEFlush, false, 5},
		{"linux-6.18-fuse_flush-at-exit.stack", BlockerFUSEFlush, false, 5},
		{"linux-6.1-fuse-read-killed.stack", BlockerFUSERequest, false, 5},
		{"linux-6.18-fuse-read-killed.stack", BlockerFUSERequest, false, 5},
		{"linux-6.18-fuse-lookup-killed.stack", BlockerFUSERequest, false, 5},
		{"linux-6.1-init-zap_pid_ns_processes.stack", BlockerOther, true, 3},
		{"linux-6.18-init-zap_pid_ns_processes.stack", BlockerOther, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			st := captureStack(t, tt.file)
			if len(st) < tt.frames {
				t.Fatalf("parsed %d frames, want at least %d", len(st), tt.frames)
			}
			if got := classify(st); got != tt.want {
				t.Errorf("classify = %s, want %s", got, tt.want)
			}
			if got := InZap(st); got != tt.inZap {
				t.Errorf("inZap = %v, want %v", got, tt.inZap)
			}
		})
	}
}

// TestUntrustedFDCaptures: on real stacks, the fd evidence is set aside
// for the wait under a page fault (W7: read(2) of a shared mount's fd into
// a buffer mapped from another FUSE file) and kept for plain FUSE waits.
func TestUntrustedFDCaptures(t *testing.T) {
	tests := []struct {
		file      string
		untrusted bool
	}{
		{"linux-6.18-fuse-read-mmap-fault-copy-out-killed.stack", true},
		{"linux-6.18-fuse-read-mmap-fault-pin-killed.stack", true},
		{"linux-6.1-fuse-read-killed.stack", false},
		{"linux-6.18-fuse-read-killed.stack", false},
		{"linux-6.18-fuse-lookup-killed.stack", false},
		{"linux-6.18-fuse_flush-at-exit.stack", false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			st := captureStack(t, tt.file)
			if got := classify(st); got != BlockerFUSERequest && got != BlockerFUSEFlush {
				t.Fatalf("classify = %s, want a FUSE wait", got)
			}
			if why := untrustedFD(st); (why != "") != tt.untrusted {
				t.Errorf("untrustedFD = %q, want set aside: %v", why, tt.untrusted)
			}
		})
	}
}

// captureStack parses a captured kernel stack of proc/testdata.
func captureStack(t *testing.T, file string) proc.Stack {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "proc", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	st, err := proc.ParseStack(b)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
