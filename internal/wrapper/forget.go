package wrapper

import (
	"context"
	"errors"
	"time"

	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// forgetTimeout bounds the one read of init's stat before a delete. An
// init that is gone answers at once (no such process); a read that sleeps
// means a task is there (inside execve), and the record is kept.
const forgetTimeout = 100 * time.Millisecond

// forget removes the container's record before the runtime's delete when
// the init it names is provably gone: no such process, or another process
// with its pid (start time). That is when the runtime deletes it (runc
// refuses to delete a container whose init still runs, and delete --force
// has just killed and verified it), and it is what the poststop hook did,
// without a process of its own on every container's removal. A record
// whose init still exists is kept, whatever the delete then does; a
// record that cannot be read is left to the watcher and to the next
// delete. The error is only logged: a delete is never failed for it.
func (w *Wrapper) forget(ctx context.Context, inv oci.Invocation) {
	log := w.Log.WithField("id", inv.ContainerID)
	rec, err := w.Store.Find(record.Query{ID: inv.ContainerID})
	if err != nil {
		if !errors.Is(err, record.ErrNoRecord) {
			log.WithError(err).Warn("record not read before delete: kept")
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), forgetTimeout)
	defer cancel()
	if !initGone(ctx, rec) {
		return
	}
	if err := w.Store.Remove(inv.ContainerID); err != nil {
		log.WithError(err).Warn("record not removed")
		return
	}
	log.WithField("init_pid", rec.InitPID).Debug("record removed: init gone")
}

// initGone reports whether rec's init provably no longer runs: no such
// process, another process with its pid (start time), or a process whose
// every thread has exited (its pidfd is readable: a zombie waiting to be
// reaped, which runc deletes as stopped). A zombie leader with a thread
// still alive, perhaps stuck in FUSE, is not gone. Anything uncertain (a
// read that failed otherwise or timed out, no pidfd) answers false.
func initGone(ctx context.Context, rec *record.Record) bool {
	if rec.InitPID <= 0 || rec.InitStartTime == 0 {
		return false
	}
	// No cgroup in the target: a stat that does not answer stays uncertain.
	pr, err := killer.Open(ctx, proc.NewFS(""), killer.Target{PID: rec.InitPID, StartTime: rec.InitStartTime})
	switch {
	case errors.Is(err, killer.ErrNoTarget), errors.Is(err, killer.ErrStaleTarget):
		return true
	case err != nil:
		return false
	}
	defer pr.Close()
	exited, err := pr.Wait(ctx, 0)
	return err == nil && exited
}
