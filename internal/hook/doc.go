// Package hook is what fuseguard does at each OCI hook stage: at
// createRuntime and poststart it writes or refreshes the container's record
// (init pid and start time, namespaces, cgroup, bundle, trace context and
// the FUSE connections seen so far); at poststop it removes the record.
//
// Poststop never runs while init is stuck in zap_pid_ns_processes, so
// nothing here rescues: the record is what lets the runtime wrapper or
// `fuseguard kill` rescue later.
package hook
