package killer

import (
	"time"

	"github.com/fuseguard/fuseguard/internal/obs"
)

// Defaults of Options.
const (
	DefaultVerifyTimeout   = 2 * time.Second
	DefaultDiagnoseTimeout = 2 * time.Second
	DefaultRecoverTimeout  = 2 * time.Second
)

// BoundSlack is the part of Options.Bound that no budget names: opening the
// pidfd, holding the snapshot, the signal, and returning the report once the
// deadline has passed (a wait notices it within pollSlice).
const BoundSlack = 500 * time.Millisecond

// returnMargin is the part of BoundSlack kept for returning: Kill's own
// deadline is this much before the bound.
const returnMargin = 200 * time.Millisecond

// taskReadShare divides the diagnosis budget into the bound of one read of
// a task's /proc files that can block (stack, syscall, stat, wchan, ns
// links): a task inside execve holding its exec lock costs one such read,
// later reads of it fail at once (proc.ErrReadTimeout), so a few stuck
// tasks cannot eat the whole budget.
const taskReadShare = 8

// ReadTimeout bounds one read of a task's /proc files that can block
// (stack, syscall, stat, wchan, ns links): a share of DiagnoseTimeout.
// Kill and Diagnose bound each such read by it; a caller of Open bounds
// the start time's read by it too.
func (o Options) ReadTimeout() time.Duration {
	return o.withDefaults().DiagnoseTimeout / taskReadShare
}

// Bound is the longest Kill can take with these options:
// VerifyTimeout + DiagnoseTimeout + RecoverTimeout + BoundSlack. Kill
// enforces it with a deadline of its own, whatever the container does
// (tasks whose /proc files cannot be read, connections that do not die);
// a caller's earlier deadline still wins.
func (o Options) Bound() time.Duration {
	o = o.withDefaults()
	return o.VerifyTimeout + o.DiagnoseTimeout + o.RecoverTimeout + BoundSlack
}

// withDefaults fills the zero values of Options.
func (o Options) withDefaults() Options {
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = DefaultVerifyTimeout
	}
	if o.DiagnoseTimeout <= 0 {
		o.DiagnoseTimeout = DefaultDiagnoseTimeout
	}
	if o.RecoverTimeout <= 0 {
		o.RecoverTimeout = DefaultRecoverTimeout
	}
	o.Log = obs.Logger(o.Log)
	o.Tracer = obs.Tracer(o.Tracer)
	return o
}
