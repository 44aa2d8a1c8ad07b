package proc

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// ErrMountInfoSyntax is a mountinfo line the kernel would not write.
var ErrMountInfoSyntax = errors.New("malformed mountinfo line")

// MountInfo reads /proc/PID/mountinfo. It is ErrUnreadable for a task whose
// mount namespace is already gone (EINVAL once init is in do_exit).
func (fs FS) MountInfo(pid int) ([]*mountinfo.Info, error) {
	b, p, err := fs.read(pid, "mountinfo")
	if err != nil {
		return nil, err
	}
	mounts, err := ParseMountInfo(b)
	if err != nil {
		return nil, fmt.Errorf("proc: parse %s: %w", p, err)
	}
	return mounts, nil
}

// ParseMountInfo parses the bytes of a mountinfo file; it needs at least
// one mount.
//
// It has no line length limit. moby/sys/mountinfo reads with a
// bufio.Scanner and fails on a line over 64 KiB, and a container makes
// such a line by mounting on a deep enough path: the kernel prints the
// whole path (show_mountinfo grows its seq_file buffer until it fits).
// The fields keep moby/sys/mountinfo's meaning, so callers use its Info.
func ParseMountInfo(b []byte) ([]*mountinfo.Info, error) {
	var out []*mountinfo.Info
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		m, err := parseMountInfoLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", len(out)+1, err)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("mountinfo: no mounts")
	}
	return out, nil
}

// parseMountInfoLine parses one line of mountinfo (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//
// Six fields, zero or more optional fields, "-", then three fields. The
// kernel escapes space, tab, newline and backslash in root, mount point,
// type and source as \NNN (mangle_path), so one mount is always one line
// and fields never contain a space.
func parseMountInfoLine(line string) (*mountinfo.Info, error) {
	fields := strings.Split(line, " ")
	if len(fields) < 10 {
		return nil, fmt.Errorf("%w: %d fields", ErrMountInfoSyntax, len(fields))
	}
	// As in moby/sys/mountinfo: search the separator backwards from where
	// it must be, since Linux <= 3.9 could print a space in the super
	// options of cifs.
	sep := len(fields) - 4
	for fields[sep] != "-" {
		sep--
		if sep == 5 {
			return nil, fmt.Errorf("%w: no separator", ErrMountInfoSyntax)
		}
	}
	id, err := mountInt("mount id", fields[0])
	if err != nil {
		return nil, err
	}
	parent, err := mountInt("parent id", fields[1])
	if err != nil {
		return nil, err
	}
	majS, minS, ok := strings.Cut(fields[2], ":")
	if !ok {
		return nil, fmt.Errorf("%w: device %.20q is not major:minor", ErrMountInfoSyntax, fields[2])
	}
	major, err := mountInt("major", majS)
	if err != nil {
		return nil, err
	}
	minor, err := mountInt("minor", minS)
	if err != nil {
		return nil, err
	}
	return &mountinfo.Info{
		ID:         id,
		Parent:     parent,
		Major:      major,
		Minor:      minor,
		Root:       unescapeOctal(fields[3]),
		Mountpoint: unescapeOctal(fields[4]),
		Options:    fields[5],
		Optional:   strings.Join(fields[6:sep], " "),
		FSType:     unescapeOctal(fields[sep+1]),
		Source:     unescapeOctal(fields[sep+2]),
		VFSOptions: strings.Join(fields[sep+3:], " "),
	}, nil
}

// mountInt parses a decimal field; the kernel prints them unsigned and
// 32-bit (mnt_id, MAJOR, MINOR).
func mountInt(what, s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %.20q", ErrMountInfoSyntax, what, s)
	}
	return int(n), nil
}

// unescapeOctal undoes the kernel's \NNN escapes. Like moby/sys/mountinfo
// it decodes only values up to \177 (the kernel escapes only ASCII) and
// leaves any other backslash as it is.
func unescapeOctal(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+3 < len(s) &&
			(s[i+1] == '0' || s[i+1] == '1') &&
			s[i+2] >= '0' && s[i+2] <= '7' &&
			s[i+3] >= '0' && s[i+3] <= '7' {
			c = (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			i += 3
		}
		b.WriteByte(c)
	}
	return b.String()
}
