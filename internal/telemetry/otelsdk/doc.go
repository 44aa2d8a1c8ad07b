// Package otelsdk sets up the OpenTelemetry SDK for the fuseguard commands:
// a tracer provider configured from the standard OTEL_* environment,
// exporting over OTLP/HTTP (or to the console) through a batch processor.
// Only commands import it; library packages trace through the API
// (package telemetry) with the tracer their caller gives them.
//
// Tracing must never get in the way of a rescue: it is off unless an endpoint
// (or the console exporter) is configured, exports have a tight timeout and no
// retries, export failures are collected rather than printed, and Shutdown is
// bounded. Nothing here touches the otel globals; callers inject the
// Provider's TracerProvider or Tracer where they need one.
package otelsdk
