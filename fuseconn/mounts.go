package fuseconn

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/moby/sys/mountinfo"

	"github.com/fuseguard/fuseguard/proc"
)

// IsFUSE reports whether a mountinfo fs type is FUSE: fuse, fuse.*, fuseblk.
func IsFUSE(fstype string) bool {
	return fstype == "fuse" || fstype == "fuseblk" || strings.HasPrefix(fstype, "fuse.")
}

// FUSEMounts keeps the FUSE mounts of a parsed mount table.
func FUSEMounts(infos []*mountinfo.Info) []Mount {
	var out []Mount
	for _, info := range infos {
		if info == nil || !IsFUSE(info.FSType) {
			continue
		}
		// The minor number names the fusectl directory; a value no
		// kernel writes cannot name a connection.
		if info.Minor < 0 || info.Minor > math.MaxUint32 {
			continue
		}
		subtype, ok := strings.CutPrefix(info.FSType, "fuse.")
		if !ok {
			subtype = ""
		}
		out = append(out, Mount{
			MountID:    info.ID,
			Major:      info.Major,
			Minor:      info.Minor,
			Conn:       ConnID(info.Minor),
			MountPoint: info.Mountpoint,
			FSType:     info.FSType,
			Subtype:    subtype,
			Source:     info.Source,
		})
	}
	return out
}

// ParseFUSEMounts parses a mountinfo file and keeps its FUSE mounts. An
// empty file (a namespace already gone) has none. Lines have no length
// limit (see proc.ParseMountInfo).
func ParseFUSEMounts(r io.Reader) ([]Mount, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	infos, err := proc.ParseMountInfo(b)
	if err != nil {
		return nil, fmt.Errorf("parse mountinfo: %w", err)
	}
	return FUSEMounts(infos), nil
}
