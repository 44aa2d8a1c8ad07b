// Package obs gives library code its logger and tracer when the caller gave
// none: a logger that discards and a tracer that records nothing, so that
// every package can log and trace unconditionally.
package obs

import (
	"io"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Logger returns l, or a logger that discards everything when l is nil.
func Logger(l logrus.FieldLogger) logrus.FieldLogger {
	if l != nil {
		return l
	}
	d := logrus.New()
	d.SetOutput(io.Discard)
	return d
}

// Tracer returns t, or a tracer that records nothing when t is nil.
func Tracer(t trace.Tracer) trace.Tracer {
	if t != nil {
		return t
	}
	return noop.NewTracerProvider().Tracer("")
}
