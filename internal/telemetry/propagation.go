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
//
// TRACEPARENT must pass ParseTraceParent: the propagator alone accepts
// future versions with trailing fields, more than fuseguard passes on.
func ExtractEnv(ctx context.Context, getenv func(string) string) context.Context {
	if _, err := ParseTraceParent(getenv(EnvTraceParent)); err != nil {
		return ctx
	}
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

// traceParentLen is the length of a version-00 traceparent:
// "00-" 32 hex "-" 16 hex "-" 2 hex.
const traceParentLen = 55

// ParseTraceParent parses a traceparent (a record's, an OCI annotation's,
// TRACEPARENT) into a remote span context, for a parent or a link.
//
// The annotation is written by whoever creates the container, so only
// exactly what W3C Trace Context level 1 defines is accepted: version 00,
// lower-case hex, non-zero trace and span ids, exactly 55 bytes. Store
// FormatTraceParent of the result, never the input. The error quotes at
// most a prefix of the input, escaped.
func ParseTraceParent(s string) (trace.SpanContext, error) {
	if len(s) != traceParentLen || s[:3] != "00-" || s[35] != '-' || s[52] != '-' || !lowerHex(s[3:35]) || !lowerHex(s[36:52]) || !lowerHex(s[53:]) {
		return trace.SpanContext{}, fmt.Errorf("%w: %.64q: want 00-<32 lower-case hex>-<16 lower-case hex>-<2 lower-case hex>", ErrInvalidTraceParent, s)
	}
	m := propagation.MapCarrier{"traceparent": s}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), m))
	if !sc.IsValid() {
		return trace.SpanContext{}, fmt.Errorf("%w: %q: zero trace or span id", ErrInvalidTraceParent, s)
	}
	return sc, nil
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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
