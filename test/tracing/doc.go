// Package tracing holds fuseguard's tracing tests: the span tree of a real
// rescue recorded in memory, and end to end through a private dockerd with
// the runtime wrapper registered, exported over OTLP to a Jaeger the test
// starts and read back from Jaeger's query API; also the collector-down
// case and the overhead benchmarks. The package has no code of its own.
package tracing
