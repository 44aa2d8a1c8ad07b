package wrapper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// errNotDirect says why the wrapper leaves a SIGKILL to the real runtime.
var errNotDirect = errors.New("the runtime's own kill is needed")

// cgroupV1Root is where the cgroup v1 hierarchies are mounted, one
// directory per hierarchy named by its controllers (the convention of
// systemd and Docker).
const cgroupV1Root = "/sys/fs/cgroup"

// directKill reports whether the wrapper may send the SIGKILL of `kill
// <id> KILL` itself, through the recorded init's pidfd, instead of running
// the real runtime's kill as a child: that saves a whole runtime process on
// every container's kill. It may only where the runtime's kill would do
// nothing more than signal init:
//   - not --all, which signals every process of the cgroup;
//   - a record names init (pid and start time: the pidfd is checked
//     against both, as runc checks its state; when init's stat does not
//     answer, against its PID namespace and the record's cgroup, see
//     killer.Open);
//   - init has a PID namespace of its own, so the kernel kills the whole
//     container with it (runc ≥ 1.2 signals every process of the cgroup
//     when the namespace is shared);
//   - init is not already exiting (the runtime then answers "not running",
//     which the caller may rely on);
//   - the container is not frozen by the cgroup v1 freezer, where a killed
//     task dies only once thawed (runc ≥ 1.2 thaws it after the signal).
//
// Anything it cannot establish leaves the kill to the runtime.
func (w *Wrapper) directKill(ctx context.Context, inv oci.Invocation, t killer.Target, rec *record.Record) error {
	switch {
	case inv.All:
		return fmt.Errorf("%w: --all", errNotDirect)
	case rec == nil || rec.InitStartTime == 0:
		return fmt.Errorf("%w: no record of init", errNotDirect)
	case rec.PidNS == 0:
		return fmt.Errorf("%w: init's PID namespace not recorded", errNotDirect)
	}
	p := proc.NewFS("")
	rctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	own, err := p.NamespaceInode(rctx, os.Getpid(), "pid")
	if err != nil {
		return fmt.Errorf("%w: own PID namespace: %w", errNotDirect, err)
	}
	if own == rec.PidNS {
		return fmt.Errorf("%w: init shares the host's PID namespace", errNotDirect)
	}
	if w.dying(ctx, t) {
		return fmt.Errorf("%w: init is already exiting", errNotDirect)
	}
	if frozen, err := frozenV1(p, t.PID); err != nil || frozen {
		return fmt.Errorf("%w: cgroup v1 freezer: frozen %v, %w", errNotDirect, frozen, err)
	}
	return nil
}

// frozenV1 reports whether pid's cgroup v1 freezer cgroup is not THAWED.
// With no v1 freezer (cgroup v2, where a fatal signal ends a frozen task)
// it is false; an error means it could not tell.
func frozenV1(p proc.FS, pid int) (bool, error) {
	path, hierarchy, ok, err := p.ControllerCgroup(pid, "freezer")
	if err != nil || !ok || path == "/" {
		// The root freezer cgroup cannot be frozen (it has no
		// freezer.state).
		return false, err
	}
	b, err := os.ReadFile(filepath.Join(cgroupV1Root, hierarchy, path, "freezer.state"))
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) != "THAWED", nil
}

// killDirectly is the wrapper's kill when directKill allows it: the
// bounded killer.Kill, which signals init through its pidfd (holding its
// mount table first, as the proof of what is the container's), verifies
// the exit and rescues. It reports whether init was signalled; when it was
// not (init gone or its pid reused in between, no pidfd), nothing is
// logged but why, and the runtime's kill answers.
func (w *Wrapper) killDirectly(ctx context.Context, span trace.Span, log logrus.FieldLogger, t killer.Target, rec *record.Record) bool {
	rep, err := killer.Kill(ctx, t, w.killerOptions(log, rec, false))
	if !rep.Signalled() {
		log.WithError(err).WithField("outcome", rep.Outcome).Debug("not signalled by fuseguard: the runtime kills")
		return false
	}
	w.logRescue(span, log, t, rec, rep, err)
	return true
}
