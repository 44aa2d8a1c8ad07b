package killer

import (
	"go.opentelemetry.io/otel/attribute"

	"github.com/fuseguard/fuseguard/internal/telemetry"
)

// Attributes describe the diagnosis on a span: whether init is in
// zap_pid_ns_processes, how many tasks are stuck, and the stuck task that
// best explains the hang with its top kernel frame.
func (d *Diagnosis) Attributes() []attribute.KeyValue {
	return append([]attribute.KeyValue{
		telemetry.InitInZap(d.InitInZap),
		telemetry.StuckTasks(len(d.Stuck)),
	}, d.stuckAttributes()...)
}

// stuckAttributes names one stuck task: one provably waiting on a FUSE
// connection, else one in a FUSE wait, else the first with a stack.
func (d *Diagnosis) stuckAttributes() []attribute.KeyValue {
	best := -1
	rank := func(t Task) int {
		switch {
		case len(t.Stack) == 0:
			return 0
		case t.HasConn:
			return 3
		case t.Blocker == BlockerFUSERequest || t.Blocker == BlockerFUSEFlush:
			return 2
		default:
			return 1
		}
	}
	for i, t := range d.Stuck {
		if rank(t) > 0 && (best < 0 || rank(t) > rank(d.Stuck[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	t := d.Stuck[best]
	return []attribute.KeyValue{telemetry.StuckTID(t.TID), telemetry.KernelFrame(t.Stack[0].Function)}
}
