package otelsdk

import (
	"context"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"
	"github.com/fuseguard/fuseguard/test/jaeger"
	"github.com/fuseguard/fuseguard/test/loopback"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// BenchmarkOverhead measures what tracing adds to one short-lived
// fuseguard process (New, two spans, Shutdown): with the collector down and
// up, each against tracing off interleaved in the same iterations.
// ms-over-off/op is the added time; x-off the ratio.
func BenchmarkOverhead(b *testing.B) {
	off := otelenv.Config{Exporter: otelenv.ExporterNone}
	b.Run("off", func(b *testing.B) {
		for range b.N {
			emitAndShutdown(context.Background(), off)
		}
	})
	b.Run("collector-down", func(b *testing.B) {
		benchVsOff(b, otelenv.Config{Endpoint: "http://" + loopback.Closed(b) + "/v1/traces"})
	})
	b.Run("collector-up", func(b *testing.B) {
		testenv.RequireLong(b)
		j := jaeger.Start(b)
		benchVsOff(b, otelenv.Config{Endpoint: j.OTLPEndpoint + "/v1/traces", ServiceName: "fuseguard-bench"})
	})
}

func benchVsOff(b *testing.B, cfg otelenv.Config) {
	off := otelenv.Config{Exporter: otelenv.ExporterNone}
	var base, traced time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		d, _ := emitAndShutdown(context.Background(), off)
		base += d
		b.StartTimer()
		// Export errors are expected with the collector down; the
		// tests assert them.
		d, _ = emitAndShutdown(context.Background(), cfg)
		traced += d
	}
	n := float64(b.N)
	b.ReportMetric(float64(traced-base)/n/float64(time.Millisecond), "ms-over-off/op")
	b.ReportMetric(float64(traced)/float64(max(base, 1)), "x-off")
}
