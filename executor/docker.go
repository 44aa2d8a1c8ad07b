package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// Docker is the part of the Docker Engine API the executor calls. A
// *client.Client satisfies it; every call gets a context with a deadline.
type Docker interface {
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	ContainerKill(ctx context.Context, containerID, signal string) error
}

var _ Docker = (*client.Client)(nil)

// NewDockerClient returns a Docker client for host ("" means DOCKER_HOST
// and the other DOCKER_* variables, else the default socket). It
// negotiates the API version, so that this client library talks to
// Docker 20.10 as well as to newer engines.
func NewDockerClient(host string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %q: %w", host, err)
	}
	return c, nil
}

// Sentinel errors callers branch on (always wrapped with detail).
var (
	// ErrDockerNoAnswer: a Docker call did not answer within its deadline,
	// or the daemon could not be reached at all.
	ErrDockerNoAnswer = errors.New("docker did not answer in time")
	// ErrNoContainer: Docker does not know the container.
	ErrNoContainer = errors.New("no such container")
)

// dockerCall runs one Docker call under its own deadline, on the caller's
// goroutine. The caller's own end (cancellation, deadline) is returned as
// the context's error; the call's deadline, or a daemon that cannot be
// reached, as ErrDockerNoAnswer.
func dockerCall(ctx context.Context, timeout time.Duration, what string, call func(ctx context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := call(cctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("docker %s: %w", what, ctx.Err())
	case cctx.Err() != nil:
		return fmt.Errorf("docker %s: %w (%v): %w", what, ErrDockerNoAnswer, timeout, err)
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("docker %s: %w: %w", what, ErrDockerNoAnswer, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("docker %s: %w: %w", what, ErrNoContainer, err)
	default:
		return fmt.Errorf("docker %s: %w", what, err)
	}
}
