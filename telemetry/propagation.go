package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Carriers of a W3C trace context outside a process.
const (
	// EnvTraceParent and EnvTraceState carry the context to and from child
	// processes (the environment-variable carrier convention).
	EnvTraceParent = "TRACEPARENT"
	EnvTraceState  = "TRACESTATE"
	// AnnotationTraceParent is the OCI annotation through which an executor
	// hands its span context to the hook.
	AnnotationTraceParent = "org.fuseguard.traceparent"
)

// ErrInvalidTraceParent: the string is not a valid W3C traceparent.
var ErrInvalidTraceParent = errors.New("telemetry: invalid traceparent")

// envCarrier maps the propagator's lower-case header names onto upper-case
// environment variable names.
type envCarrier struct {
	getenv func(string) string
	set    map[string]string
}

func (c envCarrier) Get(key string) string { return c.getenv(strings.ToUpper(key)) }

func (c envCarrier) Set(key, value string) { c.set[strings.ToUpper(key)] = value }

func (c envCarrier) Keys() []string { return []string{EnvTraceParent, EnvTraceState} }

// ExtractEnv returns ctx carrying the remote span context found in
// TRACEPARENT (and TRACESTATE) through getenv; ctx unchanged if there is
// none or it is malformed.
func ExtractEnv(ctx context.Context, getenv func(string) string) context.Context {
	return propagation.TraceContext{}.Extract(ctx, envCarrier{getenv: getenv})
}

// InjectEnv returns env (KEY=value entries, as for exec.Cmd.Env) with
// TRACEPARENT and TRACESTATE set from the span context in ctx. Inherited
// values are removed, so a child never parents to a stale context; env
// itself is not modified.
func InjectEnv(ctx context.Context, env []string) []string {
	set := map[string]string{}
	propagation.TraceContext{}.Inject(ctx, envCarrier{set: set})
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == EnvTraceParent || k == EnvTraceState {
			continue
		}
		out = append(out, kv)
	}
	// Fixed order keeps the result deterministic.
	for _, k := range []string{EnvTraceParent, EnvTraceState} {
		if v, ok := set[k]; ok && v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// ParseTraceParent parses a stored traceparent (a record's, an OCI
// annotation's) into a remote span context, for a parent or a link.
func ParseTraceParent(s string) (trace.SpanContext, error) {
	m := propagation.MapCarrier{"traceparent": s}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), m))
	if !sc.IsValid() {
		return trace.SpanContext{}, fmt.Errorf("%w: %q", ErrInvalidTraceParent, s)
	}
	return sc, nil
}

// FormatTraceParent formats sc as a W3C traceparent; "" if sc is invalid.
func FormatTraceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	m := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), m)
	return m.Get("traceparent")
}

// TraceParent formats the span context in ctx; "" if there is none.
func TraceParent(ctx context.Context) string {
	return FormatTraceParent(trace.SpanContextFromContext(ctx))
}
