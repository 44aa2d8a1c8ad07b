// Package telemetry is fuseguard's tracing vocabulary, on the OpenTelemetry
// API alone: the span attribute keys and their typed constructors, ending a
// span with its error, and W3C trace context carried across processes in the
// TRACEPARENT environment variable, in records and in OCI annotations.
//
// Library packages (killer, executor, …) import only this package and take a
// trace.Tracer from their caller, who owns the SDK: linking them brings no
// exporter, no SDK and no gRPC. The fuseguard commands set the SDK up with
// package otelsdk.
package telemetry
