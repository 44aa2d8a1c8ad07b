package killer

import (
	"fmt"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/proc"
)

// connSet is the container's FUSE connections as a diagnosis learns them:
// the record's, then those in the mount tables of stuck tasks (a stuck task
// keeps its mount namespace until it gets past exit_files).
type connSet struct {
	list    []fuseguard.Connection
	byMount map[int]fuseguard.Mount
}

func newConnSet(rec *fuseguard.Record) *connSet {
	s := &connSet{byMount: map[int]fuseguard.Mount{}}
	for _, rc := range rec.Connections {
		s.add(rc.Connection)
	}
	return s
}

func (s *connSet) add(c fuseguard.Connection) {
	s.byMount[c.MountID] = c.Mount
	for _, have := range s.list {
		if have.Conn == c.Conn {
			return
		}
	}
	s.list = append(s.list, c)
}

// learn adds the FUSE mounts in tid's mount table.
func (s *connSet) learn(p proc.FS, tid int, host fuseguard.HostTable) {
	infos, err := p.MountInfo(tid)
	if err != nil {
		return
	}
	for _, c := range host.Classify(fuseguard.FUSEMounts(infos)) {
		s.add(c)
	}
	for _, m := range fuseguard.FUSEMounts(infos) {
		s.byMount[m.MountID] = m
	}
}

// waitedOn names the connection tid is blocked on, when the blocked call
// takes an fd: /proc/TID/syscall gives the fd, its fdinfo the mount id, the
// mount table the connection. No FUSE path is ever touched.
func (s *connSet) waitedOn(p proc.FS, tid int) (fuseguard.ConnID, string, bool) {
	sc, err := p.Syscall(tid)
	if err != nil {
		return 0, "", false
	}
	fd, ok := sc.FD()
	if !ok {
		return 0, "", false
	}
	fi, err := p.FDInfo(tid, fd)
	if err != nil {
		return 0, "", false
	}
	m, ok := s.byMount[fi.MntID]
	if !ok {
		return 0, "", false
	}
	return m.Conn, fmt.Sprintf("fd %d of its blocked syscall %d → mnt_id %d", fd, sc.Number, fi.MntID), true
}
