package killer

import (
	"time"

	"github.com/fuseguard/fuseguard/obs"
)

// Defaults of Options.
const (
	DefaultVerifyTimeout  = 2 * time.Second
	DefaultRecoverTimeout = 2 * time.Second
)

// withDefaults fills the zero values of Options.
func (o Options) withDefaults() Options {
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = DefaultVerifyTimeout
	}
	if o.RecoverTimeout <= 0 {
		o.RecoverTimeout = DefaultRecoverTimeout
	}
	o.Log = obs.Logger(o.Log)
	o.Tracer = obs.Tracer(o.Tracer)
	return o
}
