package killer

import (
	"io"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fuseguard/fuseguard/fuseguard"
	"github.com/fuseguard/fuseguard/proc"
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
	if o.Proc.Root() == "" {
		o.Proc = proc.NewFS("")
	}
	if o.Control.Dir == "" {
		o.Control = fuseguard.NewControl("")
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Log = l
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider().Tracer("")
	}
	return o
}
