package wedgefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// ErrNotMounted is returned (wrapped) when the mount is missing from the
// mount table.
var ErrNotMounted = errors.New("wedgefs mount not found")

// Options configure a mount.
type Options struct {
	// Mode selects the request that is never answered; "" means ModeHealthy.
	Mode Mode
	// Name is the subtype: the mount's fs type becomes "fuse.<Name>";
	// "" means "wedgefs".
	Name string
	// OnBlocked, if set, is called with the opcode ("READ", "LOOKUP",
	// "FLUSH") each time a request is parked, from the handler's goroutine.
	OnBlocked func(op string)
	// Debug logs every FUSE request (go-fuse's debug output, on stderr).
	Debug bool
	// Cached opens DataFile without direct I/O: reads go through the page
	// cache, so a READ may be served from it and never reach the server
	// (use it with ModeHealthy). A read(2) then copies out of the page
	// cache into the caller's buffer, where direct I/O pins the buffer's
	// pages first: the two ways a fault on that buffer can happen.
	Cached bool
}

// Server is a mounted wedgefs.
type Server struct {
	dir     string
	mode    Mode
	cached  bool
	onBlock func(string)
	fuse    *fuse.Server

	blocked chan string
	parked  atomic.Int64

	releaseOnce sync.Once
	release     chan struct{}
}

// blockedBuffer bounds the Blocked channel; later notices are dropped when
// nobody reads it.
const blockedBuffer = 64

// Mount mounts wedgefs on dir with mount(2) directly (no fusermount: it
// needs CAP_SYS_ADMIN) and serves it in the background.
func Mount(dir string, opts Options) (*Server, error) {
	mode := opts.Mode
	if mode == "" {
		mode = ModeHealthy
	}
	if _, err := ParseMode(string(mode)); err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = "wedgefs"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("wedgefs: mountpoint %s: %w", dir, err)
	}
	s := &Server{
		dir:     abs,
		mode:    mode,
		cached:  opts.Cached,
		onBlock: opts.OnBlocked,
		blocked: make(chan string, blockedBuffer),
		release: make(chan struct{}),
	}
	srv, err := fs.Mount(abs, &root{srv: s}, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:            "wedgefs",
			Name:              name,
			DirectMountStrict: true,
			AllowOther:        true,
			Debug:             opts.Debug,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("wedgefs: mount %s: %w", abs, err)
	}
	s.fuse = srv
	if err := cloexecDevFuse(); err != nil {
		s.Unmount()
		return nil, err
	}
	return s, nil
}

// cloexecDevFuse sets close-on-exec on every /dev/fuse descriptor of the
// process. go-fuse opens the device without O_CLOEXEC; a child that
// inherited it would keep the connection alive after the daemon died and
// could wedge itself on its own exit-time FLUSH.
func cloexecDevFuse() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("wedgefs: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || target != "/dev/fuse" {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return fmt.Errorf("wedgefs: close-on-exec on /dev/fuse fd %d: %w", fd, err)
		}
	}
	return nil
}

// park holds a request's handler until Release: the kernel has handed the
// request over, so its caller waits uninterruptibly. Interrupts (sent when
// the caller gets a signal) are ignored on purpose.
func (s *Server) park(op string) syscall.Errno {
	s.parked.Add(1)
	if s.onBlock != nil {
		s.onBlock(op)
	}
	select {
	case s.blocked <- op:
	default:
	}
	<-s.release
	return syscall.EIO
}

// Dir is the absolute mountpoint.
func (s *Server) Dir() string { return s.dir }

// Mode is the server's mode.
func (s *Server) Mode() Mode { return s.mode }

// Blocked receives the opcode of each parked request (buffered; notices
// beyond the buffer are dropped).
func (s *Server) Blocked() <-chan string { return s.blocked }

// Parked counts the requests parked so far.
func (s *Server) Parked() int { return int(s.parked.Load()) }

// Release answers every parked request, and every later one that would be
// parked, with EIO. It is idempotent.
func (s *Server) Release() { s.releaseOnce.Do(func() { close(s.release) }) }

// Conn returns the FUSE connection id of the mount (the directory name
// under fusectl; convert with fuseconn.ConnID), read from
// /proc/self/mountinfo, never from the mount itself, which may be wedged.
// It is a plain uint32 so that this package builds without fuseguard.
func (s *Server) Conn() (uint32, error) { return ConnOf(s.dir) }

// Unmount releases parked requests and unmounts; when a plain unmount
// fails (busy) it detaches the mount lazily.
func (s *Server) Unmount() error {
	s.Release()
	if err := s.fuse.Unmount(); err != nil {
		if derr := syscall.Unmount(s.dir, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("wedgefs: unmount %s: %w (lazy: %w)", s.dir, err, derr)
		}
	}
	return nil
}

// Wait waits until the server stops serving: after Unmount, or after the
// connection was aborted.
func (s *Server) Wait() { s.fuse.Wait() }

// ConnOf returns the connection id of the newest FUSE mount on dir in the
// calling process's mount namespace.
func ConnOf(dir string) (uint32, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(abs))
	if err != nil {
		return 0, fmt.Errorf("wedgefs: read mount table: %w", err)
	}
	for i := len(infos) - 1; i >= 0; i-- {
		if t := infos[i].FSType; t == "fuse" || strings.HasPrefix(t, "fuse.") {
			return uint32(infos[i].Minor), nil
		}
	}
	return 0, fmt.Errorf("%w: %s", ErrNotMounted, abs)
}
