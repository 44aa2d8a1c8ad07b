// Package wrapper is fuseguard's runc-compatible runtime wrapper, the
// pattern nvidia-container-runtime uses to get OCI hooks into Docker, which
// has no hook setting of its own: daemon.json lists the wrapper under
// "runtimes", and the wrapper
//
//   - on create and run, injects fuseguard's hooks into the bundle's
//     config.json, then execs the real runtime;
//   - on kill with SIGKILL, runs the real runtime's kill and then the
//     bounded verify-and-rescue of package killer on the container's init,
//     so that a container wedged in FUSE dies and Docker gets its exit event
//     (also when the runtime refuses the kill because init is already
//     exiting, as after CRI's stop signal: containerd then waits for an
//     exit event that only the rescue brings);
//   - on delete --force, rescues first (delete --force kills anyway), then
//     execs the real runtime, whose own kill would otherwise wait 10 s on a
//     wedged init and fail;
//   - on anything else, execs the real runtime at once.
//
// Kill and delete --force run under one deadline (KillBound,
// ForceDeleteBound). The only child the wrapper ever waits on is the real
// runtime's kill: the wrapper forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT
// to it, kills and reaps it at the deadline, and the kernel kills it should
// the wrapper die first (parent death signal). Every other path is an exec,
// which leaves no wrapper process to outlive or to forward anything.
//
// Its own flags start with --fuseguard- and come before the subcommand, so
// they fit daemon.json's "runtimeArgs"; they are stripped before the real
// runtime sees argv. Everything else passes through unchanged, in order.
// Fail open: a fuseguard error is logged and the real runtime still runs.
package wrapper
