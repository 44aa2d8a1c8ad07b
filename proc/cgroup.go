package proc

import (
	"fmt"
	"slices"
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
	lines, err := parseCgroupLines(b)
	if err != nil {
		return "", err
	}
	if len(lines) == 0 {
		return "", fmt.Errorf("cgroup: no entries")
	}
	if i := slices.IndexFunc(lines, func(l cgroupLine) bool { return l.id == "0" && l.controllers == "" }); i >= 0 {
		return lines[i].path, nil
	}
	return lines[0].path, nil
}

// ControllerCgroup returns the process's path in the cgroup v1 hierarchy
// that has controller (e.g. "freezer") and that hierarchy's controller
// list as written ("cpu,cpuacct" for a co-mounted one); ok is false when
// no v1 hierarchy has it (cgroup v2, or the controller not mounted).
func (fs FS) ControllerCgroup(pid int, controller string) (path, hierarchy string, ok bool, err error) {
	b, p, err := fs.read(pid, "cgroup")
	if err != nil {
		return "", "", false, err
	}
	path, hierarchy, ok, err = ParseControllerCgroup(b, controller)
	if err != nil {
		return "", "", false, fmt.Errorf("proc: parse %s: %w", p, err)
	}
	return path, hierarchy, ok, nil
}

// ParseControllerCgroup is ControllerCgroup's parser of the bytes of
// /proc/PID/cgroup.
func ParseControllerCgroup(b []byte, controller string) (path, hierarchy string, ok bool, err error) {
	lines, err := parseCgroupLines(b)
	if err != nil {
		return "", "", false, err
	}
	for _, l := range lines {
		if l.controllers != "" && slices.Contains(strings.Split(l.controllers, ","), controller) {
			return l.path, l.controllers, true, nil
		}
	}
	return "", "", false, nil
}

// cgroupLine is one line of /proc/PID/cgroup.
type cgroupLine struct{ id, controllers, path string }

func parseCgroupLines(b []byte) ([]cgroupLine, error) {
	var out []cgroupLine
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		n++
		if line == "" {
			continue
		}
		// The path is last and may itself contain ':'.
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[0] == "" || !strings.HasPrefix(f[2], "/") {
			return nil, fmt.Errorf("cgroup: line %d %.60q: want \"id:controllers:/path\"", n, line)
		}
		out = append(out, cgroupLine{id: f[0], controllers: f[1], path: f[2]})
	}
	return out, nil
}
