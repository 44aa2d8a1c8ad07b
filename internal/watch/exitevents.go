package watch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Exit event sources, in Options.ExitEvents and WatcherState.ExitEvents.
const (
	ExitEventsAuto      = "auto"      // taskstats when the kernel gives it, else polling
	ExitEventsOff       = "off"       // polling every CheckInterval
	ExitEventsTaskstats = "taskstats" // in use: the kernel's taskstats exit notifications
	ExitEventsPolling   = "polling"   // in use: PF_EXITING read every CheckInterval
)

// ErrNoExitEvents: the kernel's exit notifications cannot be had (no
// CONFIG_TASKSTATS, no CAP_NET_ADMIN, not in the initial user and PID
// namespaces); the watcher polls instead.
var ErrNoExitEvents = errors.New("taskstats exit notifications unavailable")

// errExitEventsMalformed: a message from the taskstats socket does not
// parse.
var errExitEventsMalformed = errors.New("malformed taskstats message")

// exitEvents is a generic netlink socket registered with taskstats as a
// listener on every possible CPU: the kernel sends it one TASKSTATS_CMD_NEW
// message per task that enters do_exit, from taskstats_exit. That call
// comes right after exit_signals set the task's PF_EXITING and before
// exit_mm, exit_files (where a W3 init blocks in the FUSE flush of its
// last open file) and exit_notify (where init waits in
// zap_pid_ns_processes): the message for a container's init arrives as
// soon as the flag the watcher looks for is set, however the exit then
// blocks. The kernel sends to the listeners of the CPU the task exits on,
// hence every possible CPU.
//
// The kernel drops a message silently when it cannot allocate it, and
// sets ENOBUFS on the socket when the receive buffer is full: the watcher
// keeps a slow full check beside it (SafetyCheckInterval) and checks every
// init at once on ENOBUFS.
type exitEvents struct {
	fd     int
	family uint16
	mask   string // the registered CPU list, to deregister
	seq    uint32
	buf    []byte
}

// exitEventsRcvBuf is the socket's receive buffer: the exits of the whole
// host between two drains of the loop (a message is about 1 KiB with its
// overhead).
const exitEventsRcvBuf = 4 << 20

// exitEventsSetupTimeout bounds each request/answer of the setup.
const exitEventsSetupTimeout = time.Second

// taskstatsGenlVersion is TASKSTATS_GENL_VERSION.
const taskstatsGenlVersion = 1

// openExitEvents registers a taskstats listener on every possible CPU.
// Any failure wraps ErrNoExitEvents with the kernel's reason.
func openExitEvents() (*exitEvents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("%w: netlink socket: %w", ErrNoExitEvents, err)
	}
	e := &exitEvents{fd: fd, buf: make([]byte, 64<<10)}
	if err := e.setup(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %w", ErrNoExitEvents, err)
	}
	return e, nil
}

func (e *exitEvents) setup() error {
	if err := unix.Bind(e.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink: %w", err)
	}
	// FORCE goes past net.core.rmem_max; it needs CAP_NET_ADMIN, as the
	// registration does.
	if err := unix.SetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, exitEventsRcvBuf); err != nil {
		_ = unix.SetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, exitEventsRcvBuf)
	}
	family, err := e.resolveFamily(unix.TASKSTATS_GENL_NAME)
	if err != nil {
		return err
	}
	e.family = family
	mask, err := possibleCPUs()
	if err != nil {
		return err
	}
	// GENL_ADMIN_PERM: EPERM without CAP_NET_ADMIN; EINVAL outside the
	// initial user and PID namespaces.
	if _, err := e.request(e.family, unix.TASKSTATS_CMD_GET, unix.TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, []byte(mask+"\x00"), true); err != nil {
		return fmt.Errorf("register taskstats listener on CPUs %s: %w", mask, err)
	}
	e.mask = mask
	return nil
}

// close deregisters (the kernel otherwise keeps the listener until a send
// to it fails) and closes the socket.
func (e *exitEvents) close() {
	if e.mask != "" {
		_ = e.send(e.family, unix.TASKSTATS_CMD_GET, unix.TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, []byte(e.mask+"\x00"), 0)
	}
	unix.Close(e.fd)
}

// possibleCPUs is the kernel's list of possible CPUs ("0-3"), the mask
// taskstats accepts (a subset of cpu_possible_mask).
func possibleCPUs() (string, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return "", fmt.Errorf("possible CPUs: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// resolveFamily asks the generic netlink controller for a family's id.
func (e *exitEvents) resolveFamily(name string) (uint16, error) {
	payload, err := e.request(unix.GENL_ID_CTRL, unix.CTRL_CMD_GETFAMILY, unix.CTRL_ATTR_FAMILY_NAME, []byte(name+"\x00"), false)
	if errors.Is(err, unix.ENOENT) {
		return 0, fmt.Errorf("generic netlink family %s: %w (kernel without CONFIG_TASKSTATS)", name, err)
	}
	if err != nil {
		return 0, fmt.Errorf("generic netlink family %s: %w", name, err)
	}
	var id uint16
	err = walkAttrs(payload, func(typ uint16, val []byte) error {
		if typ == unix.CTRL_ATTR_FAMILY_ID && len(val) >= 2 {
			id = binary.NativeEndian.Uint16(val)
		}
		return nil
	})
	if err == nil && id == 0 {
		err = fmt.Errorf("%w: no family id", errExitEventsMalformed)
	}
	return id, err
}

// send writes one generic netlink request with one attribute.
func (e *exitEvents) send(family uint16, cmd uint8, attr uint16, val []byte, flags uint16) error {
	e.seq++
	alen := unix.SizeofNlAttr + len(val)
	n := unix.NLMSG_HDRLEN + sizeofGenlmsghdr + nlaAlign(alen)
	b := make([]byte, n)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(n))
	ne.PutUint16(b[4:], family)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	ne.PutUint32(b[8:], e.seq)
	b[16] = cmd
	b[17] = taskstatsGenlVersion
	a := b[unix.NLMSG_HDRLEN+sizeofGenlmsghdr:]
	ne.PutUint16(a[0:], uint16(alen))
	ne.PutUint16(a[2:], attr)
	copy(a[unix.SizeofNlAttr:], val)
	if err := unix.Sendto(e.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	return nil
}

// request sends one request and waits (bounded) for its answer: the
// payload after the generic netlink header, or, with ack, the kernel's
// acknowledgement. Exit notifications arriving meanwhile are skipped: the
// watcher checks every init once it is set up.
func (e *exitEvents) request(family uint16, cmd uint8, attr uint16, val []byte, ack bool) ([]byte, error) {
	var flags uint16
	if ack {
		flags = unix.NLM_F_ACK
	}
	if err := e.send(family, cmd, attr, val, flags); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(exitEventsSetupTimeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("no netlink answer within %s: %w", exitEventsSetupTimeout, unix.ETIMEDOUT)
		}
		pfd := []unix.PollFd{{Fd: int32(e.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("poll netlink: %w", err)
		}
		n, err := unix.Read(e.fd, e.buf)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS):
			continue
		case err != nil:
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		for b := e.buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			typ, seq, payload, rest, err := nextMsg(b)
			if err != nil {
				return nil, err
			}
			b = rest
			if seq != e.seq {
				continue
			}
			if typ == unix.NLMSG_ERROR {
				if len(payload) < 4 {
					return nil, fmt.Errorf("%w: short error", errExitEventsMalformed)
				}
				if errno := -int32(binary.NativeEndian.Uint32(payload)); errno != 0 {
					return nil, unix.Errno(errno)
				}
				return nil, nil // the acknowledgement
			}
			if len(payload) < sizeofGenlmsghdr {
				return nil, fmt.Errorf("%w: short generic netlink message", errExitEventsMalformed)
			}
			return payload[sizeofGenlmsghdr:], nil
		}
	}
}

// drain reads every pending notification and calls exited with the pid
// (in the initial PID namespace, a thread id) of each task that began to
// exit. overrun reports lost notifications (ENOBUFS): the caller checks
// every init.
func (e *exitEvents) drain(exited func(pid int)) (overrun bool, err error) {
	for {
		n, err := unix.Read(e.fd, e.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return overrun, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			overrun = true
			continue
		case err != nil:
			return overrun, fmt.Errorf("taskstats receive: %w", err)
		}
		if err := parseExits(e.buf[:n], e.family, exited); err != nil {
			return overrun, err
		}
	}
}

// parseExits calls exited with the pid of every TASKSTATS_TYPE_AGGR_PID in
// the netlink messages of b; messages of other families are skipped.
func parseExits(b []byte, family uint16, exited func(pid int)) error {
	for len(b) > 0 {
		typ, _, payload, rest, err := nextMsg(b)
		if err != nil {
			return err
		}
		b = rest
		if typ != family {
			continue
		}
		if len(payload) < sizeofGenlmsghdr {
			return fmt.Errorf("%w: short generic netlink message", errExitEventsMalformed)
		}
		if payload[0] != unix.TASKSTATS_CMD_NEW {
			continue
		}
		err = walkAttrs(payload[sizeofGenlmsghdr:], func(typ uint16, val []byte) error {
			if typ != unix.TASKSTATS_TYPE_AGGR_PID {
				return nil // AGGR_TGID: the thread group's sums, sent with its last task
			}
			return walkAttrs(val, func(typ uint16, val []byte) error {
				if typ != unix.TASKSTATS_TYPE_PID {
					return nil
				}
				if len(val) != 4 {
					return fmt.Errorf("%w: pid of %d bytes", errExitEventsMalformed, len(val))
				}
				exited(int(binary.NativeEndian.Uint32(val)))
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// nextMsg splits the first netlink message off b.
func nextMsg(b []byte) (typ uint16, seq uint32, payload, rest []byte, err error) {
	if len(b) < unix.NLMSG_HDRLEN {
		return 0, 0, nil, nil, fmt.Errorf("%w: %d bytes left", errExitEventsMalformed, len(b))
	}
	ne := binary.NativeEndian
	l := int(ne.Uint32(b[0:]))
	if l < unix.NLMSG_HDRLEN || l > len(b) {
		return 0, 0, nil, nil, fmt.Errorf("%w: message length %d of %d bytes", errExitEventsMalformed, l, len(b))
	}
	typ, seq = ne.Uint16(b[4:]), ne.Uint32(b[8:])
	payload = b[unix.NLMSG_HDRLEN:l]
	next := min(nlmsgAlign(l), len(b))
	return typ, seq, payload, b[next:], nil
}

// walkAttrs calls fn with the type (flags cleared) and value of each
// netlink attribute of b.
func walkAttrs(b []byte, fn func(typ uint16, val []byte) error) error {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < unix.SizeofNlAttr {
			return fmt.Errorf("%w: %d attribute bytes left", errExitEventsMalformed, len(b))
		}
		l := int(ne.Uint16(b[0:]))
		if l < unix.SizeofNlAttr || l > len(b) {
			return fmt.Errorf("%w: attribute length %d of %d bytes", errExitEventsMalformed, l, len(b))
		}
		typ := ne.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if err := fn(typ, b[unix.SizeofNlAttr:l]); err != nil {
			return err
		}
		b = b[min(nlaAlign(l), len(b)):]
	}
	return nil
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
func nlaAlign(n int) int   { return (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1) }

// sizeofGenlmsghdr is the size of struct genlmsghdr (cmd, version,
// reserved).
const sizeofGenlmsghdr = 4

// ProbeExitEvents registers a taskstats listener and removes it at once:
// nil when a watcher run with this process's privileges would have the
// kernel's exit notifications, else why not (wrapping ErrNoExitEvents).
func ProbeExitEvents() error {
	e, err := openExitEvents()
	if err != nil {
		return err
	}
	e.close()
	return nil
}
