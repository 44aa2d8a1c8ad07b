package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// NamespaceInode reads the inode of /proc/PID/ns/KIND ("pid", "mnt", …).
func (fs FS) NamespaceInode(pid int, kind string) (uint64, error) {
	p := fs.path(pid, "ns", kind)
	link, err := os.Readlink(p)
	if err != nil {
		return 0, fs.classify(pid, p, "readlink", err)
	}
	ino, err := ParseNamespaceLink(kind, link)
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
