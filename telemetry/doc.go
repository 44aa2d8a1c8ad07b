// Package telemetry sets up OpenTelemetry tracing for fuseguard: a tracer
// provider configured from the standard OTEL_* environment, exporting over
// OTLP/HTTP through a batch processor, and W3C trace context carried across
// processes in the TRACEPARENT environment variable, in records and in OCI
// annotations.
//
// Tracing must never get in the way of a rescue: it is off unless an endpoint
// (or the console exporter) is configured, exports have a tight timeout and no
// retries, export failures are collected rather than printed, and Shutdown is
// bounded. Nothing here touches the otel globals; callers inject the
// Provider's TracerProvider or Tracer where they need one.
package telemetry
