// Package wedgefs is a FUSE filesystem, served with go-fuse, that can refuse
// to answer one kind of request, to wedge tasks the way real stuck daemons
// do.
//
// The filesystem holds a single read-only file, [DataFile], with fixed
// content ([Content]). In a wedging [Mode] the server reads the chosen
// request from the kernel and parks its handler instead of answering: the
// kernel has handed the request to userspace, so a task waiting for the
// answer stays in request_wait_answer even after SIGKILL, until the
// connection is aborted through fusectl or the server is released.
//
// It must not depend on package testing: the demo command (cmd/fuseguard-demo) serves it too.
package wedgefs
