package dockerd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// FUSERunArgs are the `docker run` flags a container needs to mount FUSE
// file systems itself.
func FUSERunArgs() []string {
	return []string{
		"--device", "/dev/fuse",
		"--cap-add", "SYS_ADMIN",
		"--security-opt", "apparmor=unconfined",
	}
}

// Docker runs the docker CLI against this daemon and returns its output.
// A context without a deadline gets CallTimeout. The error carries the
// exit status and stderr, so a caller can match Docker's message.
func (d *Daemon) Docker(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return d.dockerStdin(ctx, nil, args...)
}

func (d *Daemon) dockerStdin(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	ctx, cancel := withDefaultTimeout(ctx, CallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.docker, args...)
	cmd.Env = append(cleanEnv(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+d.cliDir)
	cmd.Stdin = stdin
	// Do not wait forever for pipes a killed CLI's children may hold.
	cmd.WaitDelay = 2 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		err = fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), errb.String(), err
}

// RunDetached starts `docker run -d --network none` of image with cmd and
// returns the container's id. runtime selects --runtime when not empty;
// extraArgs go before the image (FUSERunArgs, for example).
func (d *Daemon) RunDetached(ctx context.Context, image, runtime string, extraArgs []string, cmd ...string) (string, error) {
	args := []string{"run", "-d", "--network", "none"}
	if runtime != "" {
		args = append(args, "--runtime", runtime)
	}
	args = append(args, extraArgs...)
	args = append(args, image)
	args = append(args, cmd...)
	out, _, err := d.Docker(ctx, args...)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" {
		return "", fmt.Errorf("docker run printed no container id")
	}
	return id, nil
}

// Kill runs `docker kill` of id (SIGKILL); the error carries Docker's
// stderr, for example "did not receive an exit event".
func (d *Daemon) Kill(ctx context.Context, id string) error {
	_, _, err := d.Docker(ctx, "kill", id)
	return err
}

// Rm runs `docker rm` of id, with -f when force is set.
func (d *Daemon) Rm(ctx context.Context, id string, force bool) error {
	args := []string{"rm"}
	if force {
		args = append(args, "-f")
	}
	_, _, err := d.Docker(ctx, append(args, id)...)
	return err
}

// Logs returns the container's stdout and stderr, combined.
func (d *Daemon) Logs(ctx context.Context, id string) (string, error) {
	out, errOut, err := d.Docker(ctx, "logs", id)
	return out + errOut, err
}

// WaitLog polls the container's log until it contains substr, the
// container stops running, or ctx ends (CallTimeout when ctx has no
// deadline). It returns the log it saw last.
func (d *Daemon) WaitLog(ctx context.Context, id, substr string) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx, CallTimeout)
	defer cancel()
	var logs string
	for {
		var err error
		if logs, err = d.Logs(ctx, id); err == nil && strings.Contains(logs, substr) {
			return logs, nil
		}
		if st, err := d.Inspect(ctx, id); err == nil && !st.Running {
			return logs, fmt.Errorf("container %.12s is %s (exit %d) and never logged %q", id, st.Status, st.ExitCode, substr)
		}
		select {
		case <-ctx.Done():
			return logs, fmt.Errorf("waiting for %q in the log of %.12s: %w", substr, id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
