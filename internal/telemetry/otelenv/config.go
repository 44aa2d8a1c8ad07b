// Package otelenv reads the standard OTEL_* environment into the
// tracing configuration of the fuseguard commands. It links the standard
// library only, so that fuseguard-runtime, the lean build of the runtime
// wrapper and hook, can tell whether tracing is asked for without linking
// the SDK and its exporter (package otelsdk): it then hands the process
// over to the full binary.
package otelenv

import (
	"io"
	"strconv"
	"strings"
	"time"
)

// Exporters understood in Config.Exporter (OTEL_TRACES_EXPORTER).
const (
	ExporterOTLP    = "otlp"
	ExporterConsole = "console"
	ExporterNone    = "none"
)

// Standard environment variables read by ConfigFromEnv.
const (
	EnvSDKDisabled         = "OTEL_SDK_DISABLED"
	EnvTracesExporter      = "OTEL_TRACES_EXPORTER"
	EnvOTLPEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvServiceName         = "OTEL_SERVICE_NAME"
	EnvOTLPTimeout         = "OTEL_EXPORTER_OTLP_TIMEOUT"        // milliseconds
	EnvOTLPTracesTimeout   = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" // milliseconds
	DefaultServiceName     = "fuseguard"
	DefaultExportTimeout   = time.Second
	DefaultShutdownTimeout = 2 * time.Second
	otlpTracesPath         = "/v1/traces"
)

// Config selects and tunes the trace exporter.
type Config struct {
	// Exporter is ExporterOTLP (also when empty), ExporterConsole or
	// ExporterNone.
	Exporter string
	// Endpoint is the full OTLP/HTTP traces URL, e.g.
	// http://127.0.0.1:4318/v1/traces. With the otlp exporter an empty
	// Endpoint turns tracing off.
	Endpoint string
	// ServiceName is the resource's service.name; empty means
	// DefaultServiceName.
	ServiceName string
	// Disabled turns tracing off whatever else is set (OTEL_SDK_DISABLED).
	Disabled bool
	// ExportTimeout bounds one export (connect, send, response); zero means
	// DefaultExportTimeout. It is also the longest a blackholed collector
	// can hold up Shutdown.
	ExportTimeout time.Duration
	// ShutdownTimeout bounds Shutdown on top of the caller's context; zero
	// means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Console receives spans with the console exporter; nil means stderr.
	Console io.Writer
}

// ConfigFromEnv reads the standard OpenTelemetry variables through getenv
// (os.Getenv, or a lookup over a process's environment). Unlike the SDK's
// own defaults, no endpoint means no tracing: fuseguard runs in hooks and
// runtime wrappers where a collector is the exception.
func ConfigFromEnv(getenv func(string) string) Config {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	cfg := Config{
		Exporter:    strings.ToLower(env(EnvTracesExporter)),
		ServiceName: env(EnvServiceName),
		// The spec disables the SDK only for a case-insensitive "true".
		Disabled: strings.EqualFold(env(EnvSDKDisabled), "true"),
	}
	if cfg.Exporter == "" {
		cfg.Exporter = ExporterOTLP
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = DefaultServiceName
	}
	// The signal-specific endpoint is used as-is; the generic one is a base
	// URL the signal path is appended to.
	if ep := env(EnvOTLPTracesEndpoint); ep != "" {
		cfg.Endpoint = ep
	} else if ep := env(EnvOTLPEndpoint); ep != "" {
		cfg.Endpoint = strings.TrimRight(ep, "/") + otlpTracesPath
	}
	// Likewise the signal-specific timeout wins; a malformed or
	// non-positive value is ignored, as the SDK does.
	for _, k := range []string{EnvOTLPTracesTimeout, EnvOTLPTimeout} {
		if ms, err := strconv.Atoi(env(k)); err == nil && ms > 0 {
			cfg.ExportTimeout = time.Duration(ms) * time.Millisecond
			break
		}
	}
	return cfg
}

// PassEnv returns the tracing configuration set in getenv as KEY=value
// entries, for a child started with an exact environment (runc gives a
// hook nothing but its config entry's env). TRACEPARENT is not included:
// InjectEnv sets the child's parent.
func PassEnv(getenv func(string) string) []string {
	var out []string
	for _, k := range []string{
		EnvSDKDisabled, EnvTracesExporter, EnvOTLPEndpoint, EnvOTLPTracesEndpoint,
		EnvServiceName, EnvOTLPTimeout, EnvOTLPTracesTimeout,
	} {
		if v := getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// Enabled reports whether cfg asks for spans to be exported.
func (c Config) Enabled() bool {
	if c.Disabled {
		return false
	}
	switch c.Exporter {
	case ExporterConsole:
		return true
	case ExporterOTLP, "":
		return c.Endpoint != ""
	default:
		// ExporterNone, or one New rejects.
		return false
	}
}

// EffectiveExportTimeout is ExportTimeout, or DefaultExportTimeout when zero.
func (c Config) EffectiveExportTimeout() time.Duration {
	if c.ExportTimeout > 0 {
		return c.ExportTimeout
	}
	return DefaultExportTimeout
}

// EffectiveShutdownTimeout is ShutdownTimeout, or DefaultShutdownTimeout when zero.
func (c Config) EffectiveShutdownTimeout() time.Duration {
	if c.ShutdownTimeout > 0 {
		return c.ShutdownTimeout
	}
	return DefaultShutdownTimeout
}

// EffectiveServiceName is ServiceName, or DefaultServiceName when empty.
func (c Config) EffectiveServiceName() string {
	if c.ServiceName != "" {
		return c.ServiceName
	}
	return DefaultServiceName
}
