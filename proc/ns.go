package proc

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// NamespaceInode reads the inode of /proc/PID/ns/KIND ("pid", "mnt", …).
// Following the link checks access under a lock a task inside execve holds
// (it sleeps in proc_ns_get_link on Linux 6.18), so it is bounded by ctx:
// ErrReadTimeout.
func (fs FS) NamespaceInode(ctx context.Context, pid int, kind string) (uint64, error) {
	p := fs.path(pid, "ns", kind)
	link, err := fs.bounded(ctx, pid, p, "readlink", func() ([]byte, error) {
		l, err := os.Readlink(p)
		return []byte(l), err
	})
	if err != nil {
		return 0, err
	}
	ino, err := ParseNamespaceLink(kind, string(link))
	if err != nil {
		return 0, fmt.Errorf("proc: parse %s: %w", p, err)
	}
	return ino, nil
}

// ParseNamespaceLink parses the target of an ns link, "pid:[4026531836]",
// checking that it names a namespace of the given kind.
func ParseNamespaceLink(kind, link string) (uint64, error) {
	rest, ok := strings.CutPrefix(link, kind+":[")
	if ok {
		rest, ok = strings.CutSuffix(rest, "]")
	}
	if !ok {
		return 0, fmt.Errorf("ns link %.60q: want \"%s:[inode]\"", link, kind)
	}
	ino, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ns link %.60q: inode: %w", link, err)
	}
	return ino, nil
}
