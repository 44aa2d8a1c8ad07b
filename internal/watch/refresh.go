package watch

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/codes"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/telemetry"
)

// readBatch is what the mount-table reads of one round of the loop share:
// the host's table, read at most once, and fusectl's generations, taken
// once before the first read and so before every read of the round (all
// Control.Stamp needs to prove an instance held its id for the whole
// read).
type readBatch struct {
	host     *fuseconn.HostTable
	gens     map[fuseconn.ConnID]fuseconn.Generation
	haveGens bool
}

// refresh rereads t's mount table and records the FUSE connections not yet
// in its record. b is shared by the reads of one round (nil: this read
// alone). An unreadable host table records the connections with unknown
// ownership (never owned) and is read again on the next call.
//
// Every read starts a cool-down for t (see cool).
func (w *Watcher) refresh(t *tracked, b *readBatch, now time.Time, why string) {
	if t.mntFD < 0 {
		return
	}
	if b == nil {
		b = &readBatch{}
	}
	w.cool(t, now)
	w.emit(Event{Kind: EventMountRead, ID: t.rec.ID, PID: t.rec.InitPID})
	// Generations before and after the read prove which instance each
	// mount is (ids are reused): see fuseconn.Control.Stamp.
	if !b.haveGens {
		b.gens, _ = w.o.Control.Generations()
		b.haveGens = true
	}
	mounts, buf, err := t.readMounts(w.mntBuf, w.o.MaxMountInfo)
	if errors.Is(err, errRootMoved) {
		w.poll.del(t.mntFD) // reopenMounts closes it
		if err = t.reopenMounts(w.o.Proc); err == nil {
			mounts, buf, err = t.readMounts(buf, w.o.MaxMountInfo)
		}
		if perr := w.pollMounts(t); perr != nil && err == nil {
			err = perr
		}
	}
	w.mntBuf = buf
	if cap(buf) > mntBufKeep {
		w.mntBuf = make([]byte, 0, mntBufKeep) // a large table's buffer is not kept
	}
	log := w.log.WithFields(logrus.Fields{"container": t.rec.ID, "pid": t.rec.InitPID})
	if err != nil {
		// EINVAL: init left its mount namespace (it is exiting); the record
		// keeps what was seen.
		switch {
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT):
			w.poll.del(t.mntFD)
			unix.Close(t.mntFD)
			t.mntFD = -1
			log.Debug("mount table gone; keeping the record as is")
		case t.mntErr != err.Error():
			// Logged once per cause: a table that stays too big is read
			// again on every change.
			log.WithError(err).Warn("cannot read mount table; keeping the record as is")
			w.failed(t.rec.ID, err)
		}
		if t.mntFD >= 0 && t.mntErr != err.Error() {
			t.mntErr = err.Error()
			w.state.changed()
		}
		return
	}
	if t.mntErr != "" {
		log.Info("mount table readable again")
		t.mntErr = ""
		w.state.changed()
	}
	if len(mounts) == 0 {
		return // nothing FUSE: no need to classify
	}
	_, span := w.o.Tracer.Start(context.Background(), "fuseguard.record.refresh")
	defer span.End()
	span.SetAttributes(telemetry.ContainerID(t.rec.ID), telemetry.ProcessPID(t.rec.InitPID),
		telemetry.RefreshReason(why), telemetry.FUSEMounts(len(mounts)))
	if b.host == nil {
		table := fuseconn.ReadHostTable(w.o.Proc)
		b.host = &table
	}
	host := b.host
	conns := w.capConnections(t, w.o.Control.Stamp(b.gens, host.Classify(mounts)), log)
	if host.Err != nil {
		log.WithError(host.Err).Warn("cannot read host mount table: ownership unknown, nothing recorded now is owned")
		w.failed(t.rec.ID, host.Err)
		span.RecordError(host.Err)
		span.SetStatus(codes.Error, host.Err.Error())
		b.host = nil // read it again next time
	}
	before := len(t.rec.Connections)
	added := t.rec.Merge(conns, now)
	span.SetAttributes(telemetry.Added(added))
	if added == 0 {
		return
	}
	newIDs := connIDs(t.rec.Connections[before:])
	w.save(t)
	for _, c := range t.rec.Connections[before:] {
		log.WithFields(logrus.Fields{"conn": c.Conn, "fs_type": c.FSType, "mount_point": c.MountPoint,
			"owned": c.Owned, "reason": why}).Info("recorded FUSE connection")
	}
	w.emit(Event{Kind: EventRefreshed, ID: t.rec.ID, PID: t.rec.InitPID, Conns: newIDs})
}

// capConnections keeps of conns what fits in t's record under
// MaxConnections, counting (and logging once) what does not: a container
// mounting FUSE without end must not grow its record without end. A
// connection left out cannot be aborted on the record's word: the safe
// side.
func (w *Watcher) capConnections(t *tracked, conns []fuseconn.Connection, log logrus.FieldLogger) []fuseconn.Connection {
	room := w.o.MaxConnections - len(t.rec.Connections)
	var kept []fuseconn.Connection
	dropped := 0
	for _, c := range conns {
		if t.rec.Has(c.Ref()) {
			// Recorded already: Merge adds nothing, or settles its
			// ownership once the host table is readable again.
			kept = append(kept, c)
			continue
		}
		if room > 0 {
			room--
			kept = append(kept, c)
		} else {
			dropped++
		}
	}
	if dropped != t.dropped {
		// Once per container: one mounting and unmounting FUSE in a loop
		// changes the count on every read. The status shows it.
		log := log.WithFields(logrus.Fields{"dropped": dropped, "max_connections": w.o.MaxConnections})
		switch {
		case dropped > 0 && !t.fullLogged:
			t.fullLogged = true
			log.Warn("record full: FUSE connections not recorded; further changes of their count are logged at debug level")
		case dropped > 0:
			log.Debug("record full: FUSE connections not recorded")
		}
		t.dropped = dropped
		w.state.changed()
	}
	return kept
}

// cool defers t's next mount-table read to its next read slot, one to two
// MountReadIntervals from now: changes made meanwhile are read then, in
// one read. That is what bounds a storm of mount-table changes in a
// container mounting and unmounting in a loop. Slots are aligned on
// multiples of the interval, so that the tables of many churning
// containers are read together: one wake-up of the loop per interval for
// all of them.
//
// The descriptor stays in the poll set, edge-triggered (see pollMounts):
// a change while cooling only marks it. It is never taken out and put
// back: the kernel reports a change to the first poll after it
// (mounts_poll compares the namespace's event count with the one the file
// saw at its last poll, and updates it), and epoll polls a descriptor as
// it adds it, so a change made while the descriptor was out would be seen
// by that poll and lost.
func (w *Watcher) cool(t *tracked, now time.Time) {
	t.mntNext = now.Truncate(w.o.MountReadInterval).Add(2 * w.o.MountReadInterval)
	t.mntChanged = false
	if t.cooling {
		return
	}
	t.cooling = true
	w.cooling[t] = struct{}{}
}

// mountsChanged handles a change of t's mount table: read now, or at the
// slot while cooling.
func (w *Watcher) mountsChanged(t *tracked, b *readBatch, now time.Time) {
	if t.cooling {
		t.mntChanged = true
		return
	}
	w.refresh(t, b, now, "mount-table change")
}

// warm ends the cool-down of every mount table whose read slot has come,
// reading those that changed meanwhile.
func (w *Watcher) warm(now time.Time) {
	var b readBatch
	for t := range w.cooling {
		if now.Before(t.mntNext) {
			continue
		}
		delete(w.cooling, t)
		t.cooling = false
		if t.mntChanged && w.tracks[t.rec.ID] == t && t.mntFD >= 0 {
			w.refresh(t, &b, now, "mount-table change")
		}
	}
}

// pollMounts puts t's mountinfo descriptor into the poll set,
// edge-triggered: one report per change, as mounts_poll reports it once.
func (w *Watcher) pollMounts(t *tracked) error {
	return w.poll.add(t.mntFD, unix.EPOLLPRI|unix.EPOLLET, pollRef{kind: pollMounts, t: t})
}

// nextMountSlot is the earliest time a cooling mount table is polled again.
func (w *Watcher) nextMountSlot() time.Time {
	d := time.Now().Add(time.Hour)
	for t := range w.cooling {
		if t.mntNext.Before(d) {
			d = t.mntNext
		}
	}
	return d
}
