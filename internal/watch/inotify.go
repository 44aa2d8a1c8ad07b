package watch

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirMask: a record written in place (close after write), renamed into
// place (Store.Save), removed, or renamed away.
const dirMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_DELETE | unix.IN_MOVED_FROM

const recordExt = ".json"

// dirWatch is a non-blocking inotify descriptor on the state directory.
type dirWatch struct{ fd int }

func newDirWatch(dir string) (*dirWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, dirMask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify_add_watch %s: %w", dir, err)
	}
	return &dirWatch{fd: fd}, nil
}

func (d *dirWatch) close() { unix.Close(d.fd) }

// dirEvent is a record id and whether its file is now there.
type dirEvent struct {
	id      string
	present bool
}

// read drains the pending events. overflow reports a lost queue: the
// caller rescans.
func (d *dirWatch) read(buf []byte) (evs []dirEvent, overflow bool, err error) {
	for {
		n, err := unix.Read(d.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return evs, overflow, nil
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return evs, overflow, fmt.Errorf("read inotify: %w", err)
		}
		got, ovf := parseInotify(buf[:n])
		evs = append(evs, got...)
		overflow = overflow || ovf
	}
}

// parseInotify decodes a buffer of inotify events into record events,
// skipping files that are not records (the lock, temporary files).
func parseInotify(b []byte) (evs []dirEvent, overflow bool) {
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			break
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:end]), "\x00")
		b = b[end:]
		if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			overflow = true
			continue
		}
		id, ok := strings.CutSuffix(name, recordExt)
		if !ok || id == "" || strings.HasPrefix(name, ".") {
			continue
		}
		evs = append(evs, dirEvent{id: id, present: ev.Mask&(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO) != 0})
	}
	return evs, overflow
}
