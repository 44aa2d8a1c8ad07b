// Package executor is what a container executor links instead of calling
// Docker with context.TODO(): a kill and a stop-then-kill that return
// within their bound even when the container is wedged in FUSE or dockerd
// itself does not answer.
//
// Every Docker call runs under its own deadline (Killer.DockerTimeout).
// Kill finds init's pid through a bounded inspect, or, when Docker does
// not answer, through the fuseguard record written while the container
// ran; sends SIGKILL through Docker, or through a pidfd when Docker does
// not answer in time; and then runs killer.Kill's bounded verify-and-rescue,
// which aborts the container's stuck FUSE connections. Each stage is one
// span ("executor.<stage>") and one killer.Stage of the Report.
//
// Wiring it into an executor's shutdown path:
//
//	cli, err := executor.NewDockerClient("") // DOCKER_HOST, API version negotiated
//	if err != nil {
//		return err
//	}
//	defer cli.Close()
//	k := &executor.Killer{Docker: cli, Log: log, Tracer: tracer}
//	rep, err := k.Stop(ctx, containerID, 10*time.Second) // SIGTERM, grace, then Kill
//	log.WithField("outcome", rep.Outcome).WithError(err).Info("task stopped")
//
// Tracing uses the OpenTelemetry API only: tracer comes from the caller's
// own SDK set-up (examples/titus-shutdown shows one), and nil records no
// spans. Linking this package brings no OpenTelemetry SDK, exporter or gRPC
// (test/deps checks it).
//
// The executor runs as root in the host's PID namespace: Docker reports
// host pids, and the rescue reads /proc and writes to fusectl.
//
// No call leaves a goroutine behind: Docker calls are made on the caller's
// goroutine with a context that ends at their deadline, and the client
// library closes the connection of a call whose context ended.
//
// The design it implements (scenarios W1–W7, the rules, the threat model)
// is docs/design.md in the repository; docs/architecture.md shows where the
// package sits.
package executor
