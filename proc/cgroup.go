package proc

import (
	"fmt"
	"strings"
)

// Cgroup returns the process's cgroup path: the cgroup v2 ("0::") entry when
// present, else the first v1 entry's path.
func (fs FS) Cgroup(pid int) (string, error) {
	b, p, err := fs.read(pid, "cgroup")
	if err != nil {
		return "", err
	}
	cg, err := ParseCgroup(b)
	if err != nil {
		return "", fmt.Errorf("proc: parse %s: %w", p, err)
	}
	return cg, nil
}

// ParseCgroup parses the bytes of /proc/PID/cgroup, lines of
// "hierarchy-id:controllers:path", into the path Cgroup returns.
func ParseCgroup(b []byte) (string, error) {
	first, found := "", false
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		n++
		if line == "" {
			continue
		}
		// The path is last and may itself contain ':'.
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[0] == "" || !strings.HasPrefix(f[2], "/") {
			return "", fmt.Errorf("cgroup: line %d %.60q: want \"id:controllers:/path\"", n, line)
		}
		if f[0] == "0" && f[1] == "" {
			return f[2], nil
		}
		if !found {
			first, found = f[2], true
		}
	}
	if !found {
		return "", fmt.Errorf("cgroup: no entries")
	}
	return first, nil
}
