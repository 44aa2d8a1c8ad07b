package otelsdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/internal/telemetry/otelenv"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Sentinel errors.
var (
	// ErrUnknownExporter: Config.Exporter is not otlp, console or none.
	ErrUnknownExporter = errors.New("telemetry: unknown traces exporter")
	// ErrExport: spans could not be delivered (collector down, slow or
	// refusing). Shutdown and ForceFlush report it; it is never fatal.
	ErrExport = errors.New("telemetry: span export failed")
)

// Provider owns a tracer provider and its exporter. The zero value is not
// usable; New never returns nil.
type Provider struct {
	tp              trace.TracerProvider
	sdk             *sdktrace.TracerProvider // nil when tracing is off
	exp             *errorRecorder           // nil when no exporter of our own
	shutdownTimeout time.Duration
}

// Option adjusts New.
type Option func(*options)

type options struct {
	processors []sdktrace.SpanProcessor
}

// WithSpanProcessor adds sp to the provider, which then records spans even
// when cfg configures no exporter (though not when cfg.Disabled). Tests use
// it with tracetest.NewInMemoryExporter and sdktrace.NewSimpleSpanProcessor.
func WithSpanProcessor(sp sdktrace.SpanProcessor) Option {
	return func(o *options) { o.processors = append(o.processors, sp) }
}

// New builds the Provider cfg asks for. It never returns nil: on error the
// Provider is a no-op one and the error says why, so a caller can log it and
// carry on.
func New(ctx context.Context, cfg otelenv.Config, opts ...Option) (*Provider, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	p := &Provider{tp: noop.NewTracerProvider(), shutdownTimeout: cfg.EffectiveShutdownTimeout()}

	switch cfg.Exporter {
	case "", otelenv.ExporterOTLP, otelenv.ExporterConsole, otelenv.ExporterNone:
	default:
		return p, fmt.Errorf("%w: %q", ErrUnknownExporter, cfg.Exporter)
	}
	if cfg.Disabled || (!cfg.Enabled() && len(o.processors) == 0) {
		return p, nil
	}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(newResource(cfg))}
	if cfg.Enabled() {
		exp, err := newExporter(ctx, cfg)
		if err != nil {
			return p, err
		}
		p.exp = &errorRecorder{SpanExporter: exp}
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(
			sdktrace.NewBatchSpanProcessor(p.exp, sdktrace.WithExportTimeout(cfg.EffectiveExportTimeout()))))
	}
	for _, sp := range o.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sp))
	}
	p.sdk = sdktrace.NewTracerProvider(tpOpts...)
	p.tp = p.sdk
	return p, nil
}

func newResource(cfg otelenv.Config) *resource.Resource {
	// Only attributes known here: resource detectors would read the
	// environment and the filesystem on every hook run.
	return resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(cfg.EffectiveServiceName()),
		semconv.ProcessPID(os.Getpid()),
	)
}

func newExporter(ctx context.Context, cfg otelenv.Config) (sdktrace.SpanExporter, error) {
	if cfg.Exporter == otelenv.ExporterConsole {
		w := cfg.Console
		if w == nil {
			w = os.Stderr
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			return nil, fmt.Errorf("telemetry: console exporter: %w", err)
		}
		return exp, nil
	}
	// Explicit options take precedence over the OTEL_* variables the
	// exporter would otherwise read from this process's environment.
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(endpointURL(cfg.Endpoint)),
		otlptracehttp.WithTimeout(cfg.EffectiveExportTimeout()),
		// A retry would hold Shutdown for seconds while the collector is
		// down; a lost span is cheaper than a late rescue.
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: otlp exporter for %s: %w", cfg.Endpoint, err)
	}
	return exp, nil
}

// endpointURL accepts host:port as shorthand for http://host:port.
func endpointURL(ep string) string {
	if strings.Contains(ep, "://") {
		return ep
	}
	return "http://" + ep
}

// Enabled reports whether spans are recorded.
func (p *Provider) Enabled() bool { return p.sdk != nil }

// TracerProvider returns the provider to inject into code that names its
// own tracers.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Tracer returns fuseguard's tracer.
func (p *Provider) Tracer() trace.Tracer { return p.tp.Tracer(telemetry.InstrumentationName) }

// ForceFlush exports the spans ended so far, within ctx and the shutdown
// timeout. Errors (ErrExport) are for logging only.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.shutdownTimeout)
	defer cancel()
	err := p.sdk.ForceFlush(ctx)
	return p.result("flush", err)
}

// Shutdown flushes the spans and stops the exporter, within ctx and the
// shutdown timeout; spans not delivered by then are dropped. Errors
// (ErrExport, a deadline) are for logging only: they never mean fuseguard's
// work failed.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.shutdownTimeout)
	defer cancel()
	err := p.sdk.Shutdown(ctx)
	return p.result("shutdown", err)
}

func (p *Provider) result(op string, err error) error {
	if p.exp != nil {
		err = errors.Join(err, p.exp.take())
	}
	if err != nil {
		return fmt.Errorf("telemetry: %s: %w", op, err)
	}
	return nil
}
