// Package volatile tells whether a directory lives in memory only (tmpfs,
// ramfs), where fsync has nothing to make durable: what is written there
// is gone at the next boot whatever is synced, and a rename is atomic
// without it.
package volatile

import "golang.org/x/sys/unix"

// Dir reports whether dir is on tmpfs or ramfs (statfs(2) f_type). Any
// error answers false: the caller then syncs, as it would anywhere else.
func Dir(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}
