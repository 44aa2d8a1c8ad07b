package telemetry

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParseTraceParent(t *testing.T) {
	tests := []struct {
		in      string
		trace   string
		span    string
		sampled bool
		ok      bool
	}{
		{in: validTP, trace: "4bf92f3577b34da6a3ce929d0e0e4736", span: "00f067aa0ba902b7", sampled: true, ok: true},
		{in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", trace: "4bf92f3577b34da6a3ce929d0e0e4736", span: "00f067aa0ba902b7", ok: true},
		// Flags other than sampled are carried by no field of ours.
		{in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", trace: "4bf92f3577b34da6a3ce929d0e0e4736", span: "00f067aa0ba902b7", sampled: true, ok: true},
		// Only version 00 is accepted, though a future one may append fields.
		{in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"},
		{in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"},            // upper-case flags
		{in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"},            // upper-case span id
		{in: "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},            // wrong separator
		{in: " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"},            // right length, shifted
		{in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\x1b[2J"},     // trailing escape
		{in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\x1b\n"},        // control bytes in the flags
		{in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" + "\u202e"}, // bidi override
		{in: ""},
		{in: "garbage"},
		{in: "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},   // zero trace id
		{in: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},   // zero span id
		{in: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},   // forbidden version
		{in: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},   // upper case
		{in: "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"},    // short trace id
		{in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"}, // version 00 has 4 fields
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sc, err := ParseTraceParent(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidTraceParent) {
					t.Fatalf("ParseTraceParent(%q) = %v, %v; want ErrInvalidTraceParent", tt.in, sc, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTraceParent(%q): %v", tt.in, err)
			}
			if sc.TraceID().String() != tt.trace || sc.SpanID().String() != tt.span || sc.IsSampled() != tt.sampled || !sc.IsRemote() {
				t.Errorf("ParseTraceParent(%q) = trace %s span %s sampled %v remote %v", tt.in, sc.TraceID(), sc.SpanID(), sc.IsSampled(), sc.IsRemote())
			}
		})
	}
}

func TestFormatTraceParent(t *testing.T) {
	if got := FormatTraceParent(trace.SpanContext{}); got != "" {
		t.Errorf("FormatTraceParent(invalid) = %q, want empty", got)
	}
	for _, in := range []string{validTP, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"} {
		sc, err := ParseTraceParent(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatTraceParent(sc); got != in {
			t.Errorf("FormatTraceParent(ParseTraceParent(%q)) = %q", in, got)
		}
	}
}

func TestEnvRoundTrip(t *testing.T) {
	parent := map[string]string{"TRACEPARENT": validTP, "TRACESTATE": "vendor=x"}
	ctx := ExtractEnv(context.Background(), func(k string) string { return parent[k] })
	if got := TraceParent(ctx); got != validTP {
		t.Fatalf("TraceParent(ExtractEnv) = %q, want %q", got, validTP)
	}

	env := InjectEnv(ctx, []string{"PATH=/bin", "TRACEPARENT=stale", "TRACESTATE=stale=1", "TRACEPARENTX=kept"})
	want := []string{"PATH=/bin", "TRACEPARENTX=kept", "TRACEPARENT=" + validTP, "TRACESTATE=vendor=x"}
	if !slices.Equal(env, want) {
		t.Errorf("InjectEnv = %q, want %q", env, want)
	}

	// Without a span context the inherited one is dropped, not passed on.
	env = InjectEnv(context.Background(), []string{"TRACEPARENT=" + validTP, "A=b"})
	if !slices.Equal(env, []string{"A=b"}) {
		t.Errorf("InjectEnv(no span) = %q", env)
	}

	// A malformed TRACEPARENT leaves ctx without a span context.
	ctx = ExtractEnv(context.Background(), func(k string) string {
		if k == "TRACEPARENT" {
			return "00-bogus"
		}
		return ""
	})
	if trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("ExtractEnv accepted a malformed TRACEPARENT")
	}
}

func FuzzParseTraceParent(f *testing.F) {
	for _, s := range []string{validTP, "", "00-", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", strings.Repeat("0", 55)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseTraceParent(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidTraceParent) || sc.IsValid() {
				t.Fatalf("ParseTraceParent(%q) = %v, %v", s, sc, err)
			}
			return
		}
		// What parses formats back to a version-00 traceparent that parses
		// to the same context.
		out := FormatTraceParent(sc)
		if !strings.HasPrefix(out, "00-") || len(out) != 55 {
			t.Fatalf("FormatTraceParent = %q", out)
		}
		if (strings.HasSuffix(s, "-00") || strings.HasSuffix(s, "-01")) && out != s {
			t.Fatalf("FormatTraceParent(ParseTraceParent(%q)) = %q", s, out)
		}
		sc2, err := ParseTraceParent(out)
		if err != nil || !sc2.Equal(sc) {
			t.Fatalf("round trip %q -> %q -> %v, %v (want %v)", s, out, sc2, err, sc)
		}
	})
}
