package watch

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseguard"
)

// refresh rereads t's mount table and records the FUSE connections not yet
// in its record. host is the host's table when the caller already read it
// (nil: read it if needed); the table used is returned for the next call.
// An unreadable host table records the connections with unknown ownership
// (never owned) and is read again on the next call.
func (w *Watcher) refresh(t *tracked, host *fuseguard.HostTable, now time.Time, why string) *fuseguard.HostTable {
	if t.mntFD < 0 {
		return host
	}
	// Generations before and after the read prove which instance each
	// mount is (ids are reused): see fuseguard.Control.Stamp.
	gens, _ := w.o.Control.Generations()
	mounts, buf, err := t.readMounts(w.mntBuf)
	if errors.Is(err, errRootMoved) {
		if err = t.reopenMounts(w.o.Proc); err == nil {
			w.dirty = true // poll the new descriptor
			mounts, buf, err = t.readMounts(buf)
		}
	}
	w.mntBuf = buf
	log := w.log.WithFields(logrus.Fields{"container": t.rec.ID, "pid": t.rec.InitPID})
	if err != nil {
		// EINVAL: init left its mount namespace (it is exiting); the record
		// keeps what was seen.
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
			unix.Close(t.mntFD)
			t.mntFD = -1
			w.dirty = true
			log.Debug("mount table gone; keeping the record as is")
		} else {
			log.WithError(err).Warn("cannot read mount table")
		}
		return host
	}
	if len(mounts) == 0 {
		return host // nothing FUSE: no need to classify
	}
	_, span := w.o.Tracer.Start(context.Background(), "fuseguard.record.refresh")
	defer span.End()
	span.SetAttributes(attribute.String("container.id", t.rec.ID), attribute.Int("process.pid", t.rec.InitPID),
		attribute.String("fuseguard.refresh_reason", why), attribute.Int("fuseguard.fuse_mounts", len(mounts)))
	if host == nil {
		table := fuseguard.ReadHostTable(w.o.Proc)
		host = &table
	}
	conns := w.o.Control.Stamp(gens, host.Classify(mounts))
	next := host
	if host.Err != nil {
		log.WithError(host.Err).Warn("cannot read host mount table: ownership unknown, nothing recorded now is owned")
		span.RecordError(host.Err)
		span.SetStatus(codes.Error, host.Err.Error())
		next = nil // read it again next time
	}
	before := len(t.rec.Connections)
	added := t.rec.Merge(conns, now)
	span.SetAttributes(attribute.Int("fuseguard.added", added))
	if added == 0 {
		return next
	}
	newIDs := connIDs(t.rec.Connections[before:])
	w.save(t)
	for _, c := range t.rec.Connections[before:] {
		log.WithFields(logrus.Fields{"conn": c.Conn, "fs_type": c.FSType, "mount_point": c.MountPoint,
			"owned": c.Owned, "reason": why}).Info("recorded FUSE connection")
	}
	w.emit(Event{Kind: EventRefreshed, ID: t.rec.ID, PID: t.rec.InitPID, Conns: newIDs})
	return next
}
