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
			b, err := os.ReadFile(filepath.Join("..", "proc", "testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			st, err := proc.ParseStack(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(st) < tt.frames {
				t.Fatalf("parsed %d frames, want at least %d", len(st), tt.frames)
			}
			if got := classify(st); got != tt.want {
				t.Errorf("classify = %s, want %s", got, tt.want)
			}
			if got := inZap(st); got != tt.inZap {
				t.Errorf("inZap = %v, want %v", got, tt.inZap)
			}
		})
	}
}
