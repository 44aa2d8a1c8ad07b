// Package jaeger runs a real Jaeger (the binary pinned in tools/, built to
// bin/jaeger) for tests, on free loopback ports with in-memory storage, and
// reads traces back through Jaeger's HTTP query API so that tests can assert
// the span trees fuseguard exported.
package jaeger
