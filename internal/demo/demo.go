// Package demo wedges a real container on FUSE and rescues it: the main job
// of `make demo` (command fuseguard-demo), on the embedded default (no
// Docker, no Jaeger).
//
// The container's FUSE daemon is part of the demo: the test suite's
// fusefixture (test/fusefixture, serving test/wedgefs with go-fuse), which
// the demo's binary runs by re-executing itself with ChildCommand. That is
// why the demo is a command of its own: the node binary, cmd/fuseguard,
// must not carry a FUSE server.
//
// The "container" is scenario W2 of docs/design.md, the seed's self-deadlock: a
// new PID and mount namespace whose FUSE daemon reads its own mount from one
// of its threads and never answers. Killing its init leaves init in
// zap_pid_ns_processes forever; fuseguard's bounded kill aborts exactly that
// connection and init is reaped.
package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/untrusted"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fusefixture"
)

// ChildCommand is the hidden subcommand the demo re-executes its binary
// with; the binary's main must hand it to Child.
const ChildCommand = "__demo-child"

// Child runs one role of the demo's container (a fusefixture subcommand).
func Child(args []string) int { return fusefixture.Main(args) }

// Errors the caller can branch on.
var (
	ErrNotRoot = errors.New("the demo needs root: it creates PID and mount namespaces and mounts FUSE")
	ErrNoFUSE  = errors.New("the demo needs /dev/fuse")
)

// Options of a demo run.
type Options struct {
	Self          string        // the binary to re-execute (default: this one)
	ArmTimeout    time.Duration // how long the wedge may take to arm (default 15 s)
	VerifyTimeout time.Duration // killer's verify timeout (default 2 s)
	Log           logrus.FieldLogger
	Tracer        trace.Tracer // nil: no spans
}

// Run builds the wedged container, kills it with fuseguard, prints the
// diagnosis and the timeline to w, and removes everything it made.
func Run(ctx context.Context, w io.Writer, o Options) (err error) {
	if err := preflight(); err != nil {
		return err
	}
	if o.Self == "" {
		if o.Self, err = os.Executable(); err != nil {
			return fmt.Errorf("find own binary: %w", err)
		}
	}
	if o.ArmTimeout <= 0 {
		o.ArmTimeout = 15 * time.Second
	}
	dir, err := os.MkdirTemp("", "fuseguard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return err
	}

	c, err := start(ctx, o, mnt)
	if err != nil {
		return err
	}
	defer c.cleanup()
	fmt.Fprintf(w, "container: init %d in new PID and mount namespaces; its FUSE daemon (fuse.ndrive at %s, connection %d)\n", c.init, untrusted.Text(mnt), c.conn)
	fmt.Fprintln(w, "           wedged itself: one of its threads reads its own mount, and the READ is never answered")

	p := proc.NewFS("")
	rec, err := record.NewRecord(p, "demo", c.init, time.Now())
	if err != nil {
		return fmt.Errorf("record the container: %w", err)
	}
	for _, rc := range rec.Connections {
		fmt.Fprintf(w, "record:    connection %d, %s at %s, owned=%v\n", rc.Conn, untrusted.Text(rc.FSType), untrusted.Text(rc.MountPoint), rc.Owned)
	}

	fmt.Fprintln(w, "\nkill:      SIGKILL through a pidfd, then verify, diagnose, abort, re-verify")
	killStart := time.Now()
	rep, kerr := killer.Kill(ctx, killer.RecordTarget(rec),
		killer.Options{Record: rec, VerifyTimeout: o.VerifyTimeout, Proc: p, Log: o.Log, Tracer: o.Tracer})
	reapedAt, reaped := c.waitReaped(5 * time.Second)

	if rep.Diagnosis != nil {
		fmt.Fprintln(w, "\ndiagnosis (at the verify timeout):")
		rep.Diagnosis.Explain(&indent{w: w})
	}
	fmt.Fprintln(w, "\ntimeline (ms since the kill began):")
	rep.Timeline(&indent{w: w})
	if reaped {
		fmt.Fprintf(w, "  %8.1f ms  init reaped\n", float64(reapedAt.Sub(killStart))/float64(time.Millisecond))
	}
	switch {
	case kerr != nil:
		return fmt.Errorf("kill: %w", kerr)
	case !reaped:
		return errors.New("init was not reaped within 5 s of the kill")
	case rep.Outcome != killer.OutcomeRecovered:
		return fmt.Errorf("outcome %s, expected recovered: the container was not wedged", rep.Outcome)
	}
	fmt.Fprintf(w, "\nrescued: outcome %s; only connection %d was aborted\n", rep.Outcome, c.conn)
	return nil
}

func preflight() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoFUSE, err)
	}
	return f.Close()
}

// container is the demo's running container.
type container struct {
	cmd    *exec.Cmd
	init   int
	conn   fuseconn.ConnID
	reaped chan time.Time
}

// start launches init in new namespaces and waits until the wedge is armed.
func start(ctx context.Context, o Options, mnt string) (*container, error) {
	cmd := exec.Command(o.Self, ChildCommand, "init", "--",
		o.Self, ChildCommand, "serve", "-mode", "read", "-mount", mnt, "-name", "ndrive", "-self-read")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the container: %w", err)
	}
	c := &container{cmd: cmd, init: cmd.Process.Pid, reaped: make(chan time.Time, 1)}
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case events <- sc.Text():
			default:
			}
		}
		close(events)
	}()
	go func() {
		_ = cmd.Wait()
		c.reaped <- time.Now()
	}()
	armed := time.NewTimer(o.ArmTimeout)
	defer armed.Stop()
	for {
		select {
		case line, ok := <-events:
			if !ok {
				c.cleanup()
				return nil, errors.New("the container exited before its wedge was armed")
			}
			if v, ok := field(line, "mounted", "conn"); ok {
				id, err := fuseconn.ParseConnID(v)
				if err == nil {
					c.conn = id
				}
			}
			if _, ok := field(line, "ready", "role"); ok && strings.Contains(line, "role=serve") {
				return c, nil
			}
		case <-armed.C:
			c.cleanup()
			return nil, fmt.Errorf("the wedge was not armed within %v", o.ArmTimeout)
		case <-ctx.Done():
			c.cleanup()
			return nil, ctx.Err()
		}
	}
}

// field returns the value of key in a fusefixture event line of that event.
func field(line, event, key string) (string, bool) {
	rest, ok := strings.CutPrefix(line, fusefixture.EventPrefix+event+" ")
	if !ok {
		return "", false
	}
	for _, kv := range strings.Fields(rest) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// waitReaped waits up to d for init to be reaped.
func (c *container) waitReaped(d time.Duration) (time.Time, bool) {
	select {
	case t := <-c.reaped:
		c.reaped <- t
		return t, true
	case <-time.After(d):
		return time.Time{}, false
	}
}

// cleanup leaves nothing behind, even when the rescue failed: it aborts the
// container's connection, kills init and waits for it, bounded.
func (c *container) cleanup() {
	if _, ok := c.waitReaped(0); ok {
		return
	}
	if c.conn != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = fuseconn.NewControl("").Abort(ctx, c.conn)
		cancel()
	}
	_ = syscall.Kill(c.init, syscall.SIGKILL)
	c.waitReaped(5 * time.Second)
}

// indent prefixes every line written through it with two spaces.
type indent struct {
	w       io.Writer
	midLine bool
}

func (i *indent) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		if !i.midLine {
			l = "  " + l
		}
		i.midLine = !strings.HasSuffix(l, "\n")
		if _, err := io.WriteString(i.w, l); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
