package watch

import (
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/record"
)

// rescan reads every record that changed since it was last read (tracking
// new ones, dropping removed ones) and rereads the mount tables that need
// it (rereadOnRescan): the safety net for missed events. A record whose
// file stamp is the one tracked is not decoded again: decoding a thousand
// unchanged records was most of an idle watcher's CPU.
func (w *Watcher) rescan(now time.Time) {
	files, err := w.store.Stamps()
	if err != nil {
		w.log.WithError(err).Warn("some records could not be read")
		w.failed("", err)
	}
	seen := make(map[string]bool, len(files))
	// Refusals past the kept ids are counted afresh.
	w.overflow = 0
	w.state.changed()
	for _, f := range files {
		seen[f.ID] = true
		if t := w.tracks[f.ID]; t != nil && f.Stamp != (record.Stamp{}) && t.stamp == f.Stamp {
			continue
		}
		r, err := w.store.Load(f.ID)
		switch {
		case errors.Is(err, record.ErrNoRecord):
			delete(seen, f.ID) // removed since it was listed
			continue
		case err != nil:
			w.log.WithError(err).WithField("container", f.ID).Warn("unreadable record")
			w.failed(f.ID, err)
			continue
		}
		w.track(r, now)
		if t := w.tracks[f.ID]; t != nil && sameInit(t.rec, r) {
			t.stamp = f.Stamp
		}
	}
	for id := range w.refused {
		if !seen[id] {
			delete(w.refused, id)
		}
	}
	for id, t := range w.tracks {
		if !seen[id] {
			w.forget(t, "record removed")
		}
	}
	var b readBatch
	for _, t := range w.tracks {
		if rereadOnRescan(t) {
			w.refresh(t, &b, now, "rescan")
		}
	}
}

// rereadOnRescan reports whether the rescan must reread t's mount table:
// its last read failed, or it recorded connections whose ownership could
// not be told then. Any other table is read on its own changes, none of
// which can be missed: every change wakes the namespace's poll queue
// (touch_mnt_namespace), and the descriptor stays in the epoll set from
// tracking to forgetting (see cool). Rereading a thousand tables on every
// rescan was most of the watcher's idle CPU.
func rereadOnRescan(t *tracked) bool {
	if t.mntFD < 0 {
		return false
	}
	if t.mntErr != "" {
		return true
	}
	for _, c := range t.rec.Connections {
		if c.OwnershipUnknown != "" {
			return true
		}
	}
	return false
}

// fileChanged handles an inotify event on a record.
func (w *Watcher) fileChanged(ev dirEvent, now time.Time) {
	t := w.tracks[ev.id]
	if !ev.present {
		delete(w.refused, ev.id)
		if t != nil {
			w.forget(t, "record removed")
		}
		return
	}
	rec, err := w.store.Load(ev.id)
	switch {
	case errors.Is(err, record.ErrNoRecord):
		delete(w.refused, ev.id)
		if t != nil {
			w.forget(t, "record removed")
		}
	case err != nil:
		w.log.WithError(err).WithField("container", ev.id).Warn("unreadable record")
		w.failed(ev.id, err)
	default:
		w.track(rec, now)
	}
}

// track starts watching rec, or merges it into the record already tracked
// for the same init (the hook and the watcher both write it).
func (w *Watcher) track(rec *record.Record, now time.Time) {
	log := w.log.WithFields(logrus.Fields{"container": rec.ID, "pid": rec.InitPID})
	if t := w.tracks[rec.ID]; t != nil {
		if sameInit(t.rec, rec) {
			w.mergeFile(t, rec, now)
			return
		}
		w.forget(t, "record now names another init")
	}
	if len(w.tracks) >= w.o.MaxTracked {
		w.refuse(rec.ID, log)
		return
	}
	t, err := openTracked(w.o.Proc, rec)
	if errors.Is(err, errStale) {
		if rerr := w.removeIfSame(rec); rerr != nil {
			log.WithError(rerr).Warn("cannot remove stale record")
			w.failed(rec.ID, rerr)
			return
		}
		log.WithField("reason", err.Error()).Info("removed stale record")
		w.emit(Event{Kind: EventStale, ID: rec.ID, PID: rec.InitPID, Err: err})
		return
	}
	if err != nil {
		log.WithError(err).Warn("cannot track record; retrying at the next rescan")
		w.failed(rec.ID, err)
		return
	}
	err = w.poll.add(t.pidfd, unix.EPOLLIN, pollRef{kind: pollInit, t: t})
	if err == nil {
		err = w.pollMounts(t)
	}
	if err != nil {
		w.poll.del(t.pidfd)
		t.close()
		log.WithError(err).Error("cannot poll init's pidfd; retrying at the next rescan")
		w.failed(rec.ID, err)
		return
	}
	w.tracks[rec.ID] = t
	w.byPID[rec.InitPID] = t
	delete(w.refused, rec.ID)
	w.state.changed()
	log.WithFields(logrus.Fields{"connections": connIDs(rec.Connections), "mountinfo": t.mntFD >= 0}).Info("tracking container")
	w.emit(Event{Kind: EventTracked, ID: rec.ID, PID: rec.InitPID, Conns: connIDs(rec.Connections)})
	w.refresh(t, nil, now, "tracked")
	if w.exits != nil {
		// Its exit notification may have come before it was tracked.
		var buf [statBuf]byte
		w.checkExit(t, now, &buf, false)
	}
}

// mergeFile folds a record read from disk into the tracked one and writes
// back what only the watcher knew.
func (w *Watcher) mergeFile(t *tracked, file *record.Record, now time.Time) {
	mine := t.rec
	merged := copyRecord(file)
	missing := 0
	for _, c := range mine.Connections {
		if !merged.Has(c.Ref()) {
			merged.Connections = append(merged.Connections, c)
			missing++
		}
	}
	t.rec = merged
	if missing > 0 {
		merged.Updated = now
		w.save(t)
	}
}

// maxRefusedIDs caps the ids of refused records kept (for the status and
// to log each once); past it they are only counted.
const maxRefusedIDs = 1024

// refuse notes a record that is not tracked because MaxTracked records
// already are, logging it once.
func (w *Watcher) refuse(id string, log logrus.FieldLogger) {
	if _, ok := w.refused[id]; ok {
		return
	}
	w.state.changed()
	if len(w.refused) >= maxRefusedIDs {
		if w.overflow++; w.overflow == 1 {
			log.WithField("max_tracked", w.o.MaxTracked).Error("not tracking containers: too many records tracked; further refusals are only counted")
		}
		return
	}
	w.refused[id] = struct{}{}
	log.WithFields(logrus.Fields{"tracked": len(w.tracks), "max_tracked": w.o.MaxTracked}).
		Error("not tracking container: too many records tracked; its stuck exit would not be rescued")
	w.emit(Event{Kind: EventRefused, ID: id})
}

// trackRefused tracks refused records now that room has freed up (ids not
// kept past maxRefusedIDs wait for the next rescan).
func (w *Watcher) trackRefused(now time.Time) {
	w.roomFreed = false
	for id := range w.refused {
		if len(w.tracks) >= w.o.MaxTracked {
			return
		}
		delete(w.refused, id)
		w.state.changed()
		rec, err := w.store.Load(id)
		if err != nil {
			if !errors.Is(err, record.ErrNoRecord) {
				w.log.WithError(err).WithField("container", id).Warn("unreadable record")
				w.failed(id, err)
			}
			continue
		}
		w.track(rec, now)
	}
}

// forget stops tracking t.
func (w *Watcher) forget(t *tracked, reason string) {
	log := w.log.WithFields(logrus.Fields{"container": t.rec.ID, "pid": t.rec.InitPID, "reason": reason})
	w.poll.del(t.pidfd)
	w.poll.del(t.mntFD)
	t.close()
	delete(w.tracks, t.rec.ID)
	if w.byPID[t.rec.InitPID] == t {
		delete(w.byPID, t.rec.InitPID)
	}
	delete(w.cooling, t)
	delete(w.exiting, t)
	t.cooling = false
	w.state.changed()
	if len(w.refused) > 0 || w.overflow > 0 {
		w.roomFreed = true
	}
	if reason == "init exited" {
		// poststop removes the record too; a container whose poststop never
		// ran must not leave it behind.
		if err := w.removeIfSame(t.rec); err != nil {
			log.WithError(err).Warn("cannot remove record")
			w.failed(t.rec.ID, err)
		}
	}
	log.Info("forgot container")
	w.emit(Event{Kind: EventForgotten, ID: t.rec.ID, PID: t.rec.InitPID})
}

// removeIfSame removes the record file unless it now names another init
// (the container was restarted under the same id).
func (w *Watcher) removeIfSame(rec *record.Record) error {
	cur, err := w.store.Load(rec.ID)
	if errors.Is(err, record.ErrNoRecord) {
		return nil
	}
	if err == nil && !sameInit(cur, rec) {
		return nil
	}
	return w.store.Remove(rec.ID)
}

func (w *Watcher) save(t *tracked) {
	if err := w.store.Save(t.rec); err != nil {
		w.log.WithError(err).WithField("container", t.rec.ID).Error("cannot save record")
		w.failed(t.rec.ID, err)
	}
}

func connIDs(cs []record.RecordedConnection) []fuseconn.ConnID {
	ids := make([]fuseconn.ConnID, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.Conn)
	}
	return ids
}
