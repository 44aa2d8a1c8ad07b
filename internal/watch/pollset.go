package watch

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// pollKind says what a polled descriptor is.
type pollKind uint8

const (
	pollWake   pollKind = iota // the eventfd: shutdown and rescue results
	pollDir                    // inotify on the state directory
	pollExits                  // the taskstats exit notifications
	pollInit                   // a tracked init's pidfd
	pollMounts                 // a tracked init's mountinfo
)

// pollRef is what a registered descriptor is.
type pollRef struct {
	kind pollKind
	t    *tracked // pollInit and pollMounts
}

// pollSet is the loop's epoll instance and what each registered descriptor
// is. epoll rather than poll(2): a wake-up costs the descriptors that are
// ready, not every descriptor held (two per tracked container), so that
// the loop can wake for every exit notification of the host at a cost
// that does not grow with the containers tracked.
//
// A descriptor is removed before it is closed: epoll forgets a closed
// descriptor only once every reference to its open file is gone, and a
// child between fork and exec still holds one.
type pollSet struct {
	ep    int
	regs  map[int32]pollRef
	evs   []unix.EpollEvent
	ready []pollRef
}

func newPollSet() (*pollSet, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &pollSet{ep: ep, regs: map[int32]pollRef{}, evs: make([]unix.EpollEvent, 128)}, nil
}

func (p *pollSet) close() { unix.Close(p.ep) }

// add registers fd (level-triggered) for events; a descriptor registered
// already is left as it is.
func (p *pollSet) add(fd int, events uint32, ref pollRef) error {
	if fd < 0 {
		return nil
	}
	if _, ok := p.regs[int32(fd)]; ok {
		return nil
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl add %d: %w", fd, err)
	}
	p.regs[int32(fd)] = ref
	return nil
}

// del removes fd; one not registered is ignored.
func (p *pollSet) del(fd int) {
	if fd < 0 {
		return
	}
	if _, ok := p.regs[int32(fd)]; !ok {
		return
	}
	delete(p.regs, int32(fd))
	if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_DEL, fd, nil); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBADF) {
		// Cannot happen for a registered, open descriptor; the map no
		// longer names it, so an event from it would be ignored.
		return
	}
}

// registered reports whether fd is in the set.
func (p *pollSet) registered(fd int) bool {
	_, ok := p.regs[int32(fd)]
	return ok && fd >= 0
}

// wait waits up to timeoutMS for events and returns the ready
// descriptors' refs (valid until the next wait).
func (p *pollSet) wait(timeoutMS int) ([]pollRef, error) {
	n, err := unix.EpollWait(p.ep, p.evs, timeoutMS)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return nil, nil
		}
		return nil, fmt.Errorf("epoll_wait: %w", err)
	}
	p.ready = p.ready[:0]
	for _, ev := range p.evs[:n] {
		if r, ok := p.regs[ev.Fd]; ok {
			p.ready = append(p.ready, r)
		}
	}
	return p.ready, nil
}
