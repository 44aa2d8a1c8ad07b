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
// in its record. host is the host's FUSE mounts when the caller already
// read them (nil: read them if needed); the mounts used are returned for
// the next call.
func (w *Watcher) refresh(t *tracked, host []fuseguard.Mount, now time.Time, why string) []fuseguard.Mount {
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
		if host, err = fuseguard.HostMounts(w.o.Proc); err != nil {
			log.WithError(err).Warn("cannot read host mount table")
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			return nil
		}
		if host == nil {
			host = []fuseguard.Mount{}
		}
	}
	conns := w.o.Control.Stamp(gens, fuseguard.Classify(mounts, host))
	before := len(t.rec.Connections)
	added := t.rec.Merge(conns, now)
	span.SetAttributes(attribute.Int("fuseguard.added", added))
	if added == 0 {
		return host
	}
	newIDs := connIDs(t.rec.Connections[before:])
	w.save(t)
	for _, c := range t.rec.Connections[before:] {
		log.WithFields(logrus.Fields{"conn": c.Conn, "fs_type": c.FSType, "mount_point": c.MountPoint,
			"owned": c.Owned, "reason": why}).Info("recorded FUSE connection")
	}
	w.emit(Event{Kind: EventRefreshed, ID: t.rec.ID, PID: t.rec.InitPID, Conns: newIDs})
	return host
}
