package proc

import (
	"context"
	"strings"
)

// Wchan reads /proc/TID/wchan: the function a sleeping task waits in, ""
// when it waits in none (the kernel prints "0", or nothing). On Linux 6.18
// the read sleeps behind a task inside execve, like stack: bounded by ctx.
func (fs FS) Wchan(ctx context.Context, tid int) (string, error) {
	b, _, err := fs.readBounded(ctx, tid, true, "wchan")
	if err != nil {
		return "", err
	}
	w := strings.TrimSpace(string(b))
	if w == "0" {
		return "", nil
	}
	return w, nil
}
