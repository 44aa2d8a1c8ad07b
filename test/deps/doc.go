// Package deps holds the module's link rules as tests, checked with
// `go list -deps` on the real build graph:
//
//   - the node binary (cmd/fuseguard — the root OCI hook and runtime
//     wrapper on every node) links no FUSE server, no test package and not
//     the demo, which is a command of its own (cmd/fuseguard-demo);
//   - its lean build, fuseguard-runtime (the runtime wrapper and the hooks
//     it injects, run on every container's start and kill), links none of
//     the trace exporter, gRPC, protobuf, Prometheus or doctor;
//   - the library an executor links (executor, killer and the packages they
//     expose) traces through the OpenTelemetry API only: no SDK, no
//     exporter, no gRPC — the caller owns the SDK.
package deps
