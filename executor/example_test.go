package executor_test

import (
	"context"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fuseguard/fuseguard/executor"
)

// An executor's shutdown of a task: SIGTERM, up to 10 s of grace, SIGKILL,
// and the rescue of a container wedged in FUSE, never waiting on Docker
// for more than 2 s per call.
func ExampleKiller_Stop() {
	cli, err := executor.NewDockerClient("") // DOCKER_HOST, or the default socket
	if err != nil {
		logrus.Fatal(err)
	}
	defer cli.Close()

	k := &executor.Killer{Docker: cli, DockerTimeout: 2 * time.Second, Log: logrus.StandardLogger()}
	rep, err := k.Stop(context.Background(), "3f4e5d6c7b8a", 10*time.Second)
	rep.Timeline(os.Stdout)
	if err != nil {
		logrus.WithError(err).WithField("outcome", rep.Outcome).Warn("task stop")
	}
}
