// Command titus-shutdown shuts a task's container down the way
// titus-executor's runner does at the end of a task (doShutdown →
// DockerRuntime.Kill: a stop with the task's kill-wait grace, then a kill),
// but through fuseguard's executor package: every Docker call has a
// deadline, and a container wedged in FUSE is rescued instead of leaving
// the runner blocked for days. It prints the report of each step.
//
//	titus-shutdown -id CONTAINER [-host unix:///var/run/docker.sock] [-grace 10s] [-docker-timeout 2s] [-json]
//
// Exit status: 0 when the container is gone and Docker agrees, 1 when it
// is gone but Docker did not confirm, or it survived, 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fuseguard/fuseguard/executor"
	"github.com/fuseguard/fuseguard/killer"
)

func main() { os.Exit(run()) }

func run() int {
	host := flag.String("host", "", "Docker daemon address (default: $DOCKER_HOST, else the local socket)")
	id := flag.String("id", "", "container id, id prefix or name (required)")
	grace := flag.Duration("grace", 10*time.Second, "time the task gets to exit after SIGTERM (titus killWaitSeconds)")
	dockerTimeout := flag.Duration("docker-timeout", executor.DefaultDockerTimeout, "deadline of each Docker call")
	stateDir := flag.String("state-dir", "", "fuseguard record directory (default: $FUSEGUARD_STATE_DIR, else /run/fuseguard)")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	debug := flag.Bool("debug", false, "log every step")
	flag.Parse()
	if *id == "" || flag.NArg() > 0 {
		flag.Usage()
		return 2
	}

	log := logrus.New()
	log.SetOutput(os.Stderr)
	if *debug {
		log.SetLevel(logrus.DebugLevel)
	}
	cli, err := executor.NewDockerClient(*host)
	if err != nil {
		log.Error(err)
		return 2
	}
	defer cli.Close()

	k := &executor.Killer{Docker: cli, DockerTimeout: *dockerTimeout, Log: log}
	if *stateDir != "" {
		k.Store.Dir = *stateDir
	}
	// The runner's own context: ^C ends the shutdown, promptly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "stopping %s: grace %v, bound %v\n", *id, *grace, k.StopBound(*grace))

	rep, err := k.Stop(ctx, *id, *grace)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.Timeline(os.Stdout)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, executor.ErrDockerNoAnswer) && gone(rep.Outcome):
		fmt.Fprintf(os.Stderr, "container processes gone, Docker did not confirm: %v\n", err)
		return 1
	default:
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return 1
	}
}

func gone(o killer.Outcome) bool {
	return o == killer.OutcomeExited || o == killer.OutcomeRecovered || o == killer.OutcomeAlreadyGone
}
