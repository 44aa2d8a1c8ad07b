package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Crictl runs crictl against this daemon and returns its stdout. A context
// without a deadline gets CallTimeout; crictl's own request deadline is
// CallTimeout as well (for stop, its timeout is added by crictl). The error
// carries stderr, so a caller can match the runtime's message.
func (d *Daemon) Crictl(ctx context.Context, args ...string) (string, error) {
	return d.crictlWith(ctx, CallTimeout, args...)
}

// crictlWith is Crictl with requestTimeout as crictl's --timeout.
func (d *Daemon) crictlWith(ctx context.Context, requestTimeout time.Duration, args ...string) (string, error) {
	full := append([]string{"--runtime-endpoint", "unix://" + d.Socket, "--image-endpoint", "unix://" + d.Socket,
		"--timeout", requestTimeout.String()}, args...)
	return d.run(ctx, nil, d.crictl, full...)
}

// Ctr runs ctr in containerd's k8s.io namespace, the CRI's.
func (d *Daemon) Ctr(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	return d.run(ctx, stdin, d.ctr, append([]string{"--address", d.Socket, "--namespace", "k8s.io"}, args...)...)
}

func (d *Daemon) run(ctx context.Context, stdin io.Reader, bin string, args ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CallTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	// No /etc/crictl.yaml of the host's.
	cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE="+filepath.Join(d.Dir, "crictl.yaml"))
	cmd.Stdin = stdin
	cmd.WaitDelay = 2 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		err = fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), err
}

// PodConfig is the part of the CRI PodSandboxConfig the tests set.
type PodConfig struct {
	Name, UID string
}

// Namespace modes of the CRI's NamespaceOption.
const (
	nsContainer = 1 // a namespace of the container's own (kubelet's default for PID)
	nsNode      = 2 // the host's (hostNetwork: no CNI needed)
)

// podJSON is the pod sandbox config: host network (no CNI here), a PID
// namespace per container as kubelet asks by default, logs below LogDir.
func (d *Daemon) podJSON(p PodConfig) map[string]any {
	return map[string]any{
		"metadata":      map[string]any{"name": p.Name, "namespace": "fuseguard-test", "uid": p.UID},
		"log_directory": filepath.Join(d.LogDir, p.UID),
		"linux": map[string]any{"security_context": map[string]any{
			"namespace_options": map[string]any{"network": nsNode, "pid": nsContainer},
		}},
	}
}

// ContainerConfig is the part of the CRI ContainerConfig the tests set.
type ContainerConfig struct {
	Name, Image string
	Command     []string
	// FUSE gives the container /dev/fuse and CAP_SYS_ADMIN, so that it
	// can mount FUSE file systems itself.
	FUSE bool
	// Mounts bind host paths into the container, as kubelet does for a
	// pod's volumes: container path → host path.
	Mounts map[string]string
}

func containerJSON(c ContainerConfig) map[string]any {
	sc := map[string]any{"namespace_options": map[string]any{"network": nsNode, "pid": nsContainer}}
	conf := map[string]any{
		"metadata": map[string]any{"name": c.Name},
		"image":    map[string]any{"image": c.Image},
		"command":  c.Command,
		"log_path": c.Name + ".log",
		"linux":    map[string]any{"security_context": sc},
	}
	var mounts []any
	for ctr, host := range c.Mounts {
		mounts = append(mounts, map[string]any{"container_path": ctr, "host_path": host})
	}
	if mounts != nil {
		conf["mounts"] = mounts
	}
	if c.FUSE {
		conf["devices"] = []any{map[string]any{"container_path": "/dev/fuse", "host_path": "/dev/fuse", "permissions": "rwm"}}
		sc["capabilities"] = map[string]any{"add_capabilities": []string{"SYS_ADMIN"}}
	}
	return conf
}

// Pod is a pod sandbox made by RunPod.
type Pod struct {
	ID      string
	d       *Daemon
	config  string // path of its config JSON
	logDir  string
	Runtime string
}

// RunPod runs a pod sandbox (RunPodSandbox) with the runtime handler
// runtime ("" for the default).
func (d *Daemon) RunPod(ctx context.Context, p PodConfig, runtime string) (*Pod, error) {
	conf := d.podJSON(p)
	path, err := d.writeJSON("pod-"+p.UID+".json", conf)
	if err != nil {
		return nil, err
	}
	args := []string{"runp"}
	if runtime != "" {
		args = append(args, "--runtime", runtime)
	}
	id, err := d.Crictl(ctx, append(args, path)...)
	if err != nil {
		return nil, err
	}
	return &Pod{ID: id, d: d, config: path, logDir: conf["log_directory"].(string), Runtime: runtime}, nil
}

// CreateContainer creates (CreateContainer) and starts (StartContainer) a
// container in the pod and returns its id.
func (p *Pod) CreateContainer(ctx context.Context, c ContainerConfig) (string, error) {
	path, err := p.d.writeJSON("ctr-"+p.ID[:12]+"-"+c.Name+".json", containerJSON(c))
	if err != nil {
		return "", err
	}
	id, err := p.d.Crictl(ctx, "create", "--no-pull", p.ID, path, p.config)
	if err != nil {
		return "", err
	}
	if _, err := p.d.Crictl(ctx, "start", id); err != nil {
		return id, err
	}
	return id, nil
}

// Log returns the CRI log of the pod's container name with each line's
// timestamp, stream and tag removed.
func (p *Pod) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(p.logDir, name+".log"))
	var out strings.Builder
	for line := range strings.Lines(string(b)) {
		if f := strings.SplitN(line, " ", 4); len(f) == 4 {
			out.WriteString(f[3])
		}
	}
	return out.String()
}

// WaitLog polls the container's log until it contains s.
func (p *Pod) WaitLog(ctx context.Context, name, s string) (string, error) {
	for {
		log := p.Log(name)
		if strings.Contains(log, s) {
			return log, nil
		}
		select {
		case <-ctx.Done():
			return log, fmt.Errorf("log of %s: no %q: %w", name, s, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop is StopContainer with timeout (the grace period before SIGKILL);
// crictl's own request deadline is then requestTimeout plus timeout.
func (d *Daemon) Stop(ctx context.Context, id string, timeout, requestTimeout time.Duration) error {
	_, err := d.crictlWith(ctx, requestTimeout, "stop", "--timeout", fmt.Sprint(int(timeout/time.Second)), id)
	return err
}

// Remove is RemovePodSandbox (crictl rmp --force stops it first).
func (p *Pod) Remove(ctx context.Context) error {
	_, err := p.d.Crictl(ctx, "rmp", "--force", p.ID)
	return err
}

// ContainerStatus is what the tests read of `crictl inspect`.
type ContainerStatus struct {
	State    string // CONTAINER_RUNNING, CONTAINER_EXITED, …
	ExitCode int
	Pid      int // the init's host pid while it runs
}

// Inspect returns the container's CRI status (verbose: with its pid).
func (d *Daemon) Inspect(ctx context.Context, id string) (ContainerStatus, error) {
	out, err := d.Crictl(ctx, "inspect", "--output", "json", id)
	if err != nil {
		return ContainerStatus{}, err
	}
	var v struct {
		Status struct {
			State    string `json:"state"`
			ExitCode int    `json:"exitCode"`
		} `json:"status"`
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return ContainerStatus{}, fmt.Errorf("crictl inspect %s: %w", id, err)
	}
	return ContainerStatus{State: v.Status.State, ExitCode: v.Status.ExitCode, Pid: v.Info.Pid}, nil
}

// Pods returns the ids of the pod sandboxes containerd knows.
func (d *Daemon) Pods(ctx context.Context) ([]string, error) {
	out, err := d.Crictl(ctx, "pods", "--quiet")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

func (d *Daemon) writeJSON(name string, v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(d.Dir, name)
	return path, os.WriteFile(path, b, 0o600)
}
