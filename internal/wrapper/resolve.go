package wrapper

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// DefaultRuntime is the real runtime when none is configured.
const DefaultRuntime = "runc"

// ErrRuntimeIsSelf is returned when the real runtime resolves to the
// wrapper itself, which would exec itself forever.
var ErrRuntimeIsSelf = errors.New("real runtime is fuseguard itself")

// ResolveRuntime finds the real runtime: name ("" means DefaultRuntime) is
// looked up on PATH unless it contains a slash. It must be an executable
// file that is none of selves (fuseguard's own binaries: the wrapper's,
// and the full fuseguard that the lean wrapper hands over to; for example
// through a symlink named runc). "" in selves is skipped. The result is
// absolute.
func ResolveRuntime(name string, selves ...string) (string, error) {
	if name == "" {
		name = DefaultRuntime
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("real runtime %q: %w", name, err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return "", fmt.Errorf("real runtime %q: %w", name, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("real runtime %q: %w", name, err)
	}
	for _, self := range selves {
		if self == "" {
			continue
		}
		if me, err := os.Stat(self); err == nil && os.SameFile(fi, me) {
			return "", fmt.Errorf("%w: %s is %s", ErrRuntimeIsSelf, path, self)
		}
	}
	return path, nil
}
