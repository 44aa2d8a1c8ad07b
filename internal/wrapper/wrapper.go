package wrapper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fuseguard/fuseguard/internal/obs"
	"github.com/fuseguard/fuseguard/internal/oci"
	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/internal/untrusted"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
)

// Wrapper runs one invocation of the runtime wrapper.
type Wrapper struct {
	// Runtime is the real runtime's absolute path (ResolveRuntime).
	Runtime string
	// Self is the absolute path of the fuseguard binary that the injected
	// hooks run (`Self hook <stage>`); "" disables the injection.
	Self string
	// Store holds the records; HookEnv is the injected hooks' whole
	// environment (runc passes nothing else), e.g. FUSEGUARD_STATE_DIR.
	Store   record.Store
	HookEnv []string
	// VerifyTimeout, DiagnoseTimeout and RecoverTimeout bound the rescue
	// (0: killer's defaults).
	VerifyTimeout, DiagnoseTimeout, RecoverTimeout time.Duration
	// Policy decides what the rescue may abort (the zero value: the
	// container's own connections only). DryRun is honoured: the rescue
	// then plans and reports but aborts nothing.
	Policy killer.Policy
	// Env is the environment the real runtime gets (nil: os.Environ()).
	Env []string
	// Stdin, Stdout, Stderr of the real runtime when it runs as a child
	// (nil: the wrapper's own).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Log receives what the wrapper did (nil: discard); Tracer its spans
	// (nil: none).
	Log    logrus.FieldLogger
	Tracer trace.Tracer
	// Flush, if set, is called just before the wrapper execs the real
	// runtime: the exec discards the process and the spans it has not
	// exported yet. It must be bounded.
	Flush func()
}

// stateTimeout bounds `<runtime> state <id>`, the fallback when the
// container has no record.
const stateTimeout = 2 * time.Second

// runtimeKillTimeout bounds the real runtime's kill, which runs as the
// wrapper's child; runc signals and returns in milliseconds.
const runtimeKillTimeout = 5 * time.Second

// KillBound is the longest the wrapper's kill with SIGKILL takes, enforced
// as one deadline that every step shares: the runtime's state (when there
// is no record), the runtime's kill and the rescue. When the deadline
// passes the runtime child is killed and reaped, and the wrapper returns.
func (w *Wrapper) KillBound() time.Duration {
	return stateTimeout + runtimeKillTimeout + w.rescueBound()
}

// ForceDeleteBound is the longest the wrapper's own part of delete --force
// takes, enforced like KillBound: the runtime's state and the rescue.
// Then the wrapper execs the real runtime's delete, which is no longer the
// wrapper's process.
func (w *Wrapper) ForceDeleteBound() time.Duration {
	return stateTimeout + w.rescueBound()
}

// rescueBound is the longest killer.Kill with the wrapper's options takes;
// killer.Kill enforces it.
func (w *Wrapper) rescueBound() time.Duration {
	return w.killerOptions(nil, nil, false).Bound()
}

// killerOptions are the rescue's options: the wrapper's timeouts (0: the
// killer's defaults) and abort policy.
func (w *Wrapper) killerOptions(log logrus.FieldLogger, rec *record.Record, verifyOnly bool) killer.Options {
	return killer.Options{
		VerifyTimeout:   w.VerifyTimeout,
		DiagnoseTimeout: w.DiagnoseTimeout,
		RecoverTimeout:  w.RecoverTimeout,
		Policy:          w.Policy,
		VerifyOnly:      verifyOnly,
		Record:          rec,
		Log:             log,
		Tracer:          w.Tracer,
	}
}

// Run handles the runc command line args (the wrapper's own flags already
// stripped) and returns the exit code. For every command but kill with
// SIGKILL it ends in syscall.Exec of the real runtime and returns only when
// that exec fails. Kill with SIGKILL returns within KillBound, delete
// --force execs within ForceDeleteBound.
func (w *Wrapper) Run(ctx context.Context, args []string) int {
	w.defaults()
	ctx, code, done := w.handle(ctx, args)
	if done {
		return code
	}
	return w.exec(ctx, args)
}

// handle does the wrapper's own part of the command line args: all of a
// kill with SIGKILL (done, with its exit code), or everything before the
// exec of the real runtime, returning ctx with the span the exec carries.
func (w *Wrapper) handle(ctx context.Context, args []string) (_ context.Context, code int, done bool) {
	inv, err := oci.ParseRuncArgs(args)
	w.warnNotUnderstood(inv, err, args)
	switch {
	case err != nil || inv.Help:
		// The real runtime says what is wrong in its own words.
	case inv.Command == "create" || inv.Command == "run":
		ctx = w.inject(ctx, inv)
	case inv.Command == "kill" && oci.IsSIGKILL(inv.Signal):
		kctx, cancel := context.WithDeadline(ctx, time.Now().Add(w.KillBound()))
		defer cancel()
		return ctx, w.kill(kctx, inv, args), true
	case inv.Command == "delete" && inv.Force:
		dctx, cancel := context.WithDeadline(ctx, time.Now().Add(w.ForceDeleteBound()))
		// The returned context only carries the span on to the exec.
		ctx = w.forceDelete(dctx, inv)
		cancel()
		w.forget(ctx, inv)
	case inv.Command == "delete":
		w.forget(ctx, inv)
	}
	return ctx, 0, false
}

// warnNotUnderstood logs, for the operator, every command line the
// wrapper did not fully understand: a create whose hooks it could not
// inject runs unprotected, and that must never go unsaid.
func (w *Wrapper) warnNotUnderstood(inv oci.Invocation, err error, args []string) {
	switch {
	case err != nil && (inv.Command == "create" || inv.Command == "run" ||
		// A global flag it does not know stops the parse before the
		// command: a line that may be a create is an error too.
		inv.Command == "" && (slices.Contains(args, "create") || slices.Contains(args, "run"))):
		w.Log.WithError(err).WithField("argv", args).Error("command line not understood: the container starts WITHOUT fuseguard's hooks")
	case err != nil:
		w.Log.WithError(err).WithField("argv", args).Warn("command line not understood: passed to the runtime as is")
	case len(inv.Unknown) > 0:
		w.Log.WithFields(logrus.Fields{"argv": args, "unknown": inv.Unknown, "id": inv.ContainerID, "bundle": inv.Bundle}).
			Warn("command line has flags fuseguard does not know: passed through; id and bundle guessed")
	}
}

func (w *Wrapper) defaults() {
	w.Log = obs.Logger(w.Log)
	w.Tracer = obs.Tracer(w.Tracer)
	if w.Env == nil {
		w.Env = os.Environ()
	}
	if w.Stdin == nil {
		w.Stdin = os.Stdin
	}
	if w.Stdout == nil {
		w.Stdout = os.Stdout
	}
	if w.Stderr == nil {
		w.Stderr = os.Stderr
	}
}

// exec replaces the wrapper with the real runtime, argv unchanged; its
// TRACEPARENT is the wrapper's span, for a runtime that traces too. No
// process is left to forward signals or to outlive: the caller's pid is
// the real runtime's from here on, so the caller's signals, timeouts and
// wait reach it directly.
func (w *Wrapper) exec(ctx context.Context, args []string) int {
	argv := append([]string{w.Runtime}, args...)
	if w.Flush != nil {
		w.Flush()
	}
	err := syscall.Exec(w.Runtime, argv, telemetry.InjectEnv(ctx, w.Env))
	fmt.Fprintf(w.Stderr, "fuseguard-runtime: exec %s: %s\n", untrusted.Text(w.Runtime), untrusted.Line(err.Error()))
	return 1
}

// inject adds fuseguard's hooks to the bundle of create or run, and
// returns ctx with its span. Fail open: an error is logged and the
// container starts without them.
func (w *Wrapper) inject(ctx context.Context, inv oci.Invocation) context.Context {
	ctx, span := w.Tracer.Start(ctx, "fuseguard.runtime.create", trace.WithAttributes(
		telemetry.ContainerID(inv.ContainerID)))
	defer span.End()
	log := w.Log.WithFields(logrus.Fields{"id": inv.ContainerID, "command": inv.Command})
	err := func() error {
		if w.Self == "" {
			return errors.New("own binary path unknown")
		}
		bundle := inv.Bundle
		if inv.BundleDefaulted {
			bundle = "."
		}
		abs, err := filepath.Abs(bundle)
		if err != nil {
			return err
		}
		log = log.WithField("bundle", abs)
		set := oci.HookSet{Path: w.Self, Env: telemetry.InjectEnv(ctx, w.HookEnv), Stages: injectedStages}
		changed, err := oci.PatchBundle(abs, set)
		if err != nil {
			return err
		}
		log.WithField("changed", changed).Info("hooks injected")
		return nil
	}()
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		log.WithError(err).Error("hook injection failed; starting the container without fuseguard's hooks")
	}
	return ctx
}

// kill sends the SIGKILL itself when directKill allows it, else runs the
// real kill as a child; then, if the signal went, it verifies that init
// dies and rescues it when it is stuck. The exit code is the real
// runtime's, or 0 for a signal the wrapper sent: a failed rescue is
// logged, never reported as a failed kill (the signal was delivered).
func (w *Wrapper) kill(ctx context.Context, inv oci.Invocation, args []string) int {
	ctx, span := w.Tracer.Start(ctx, "fuseguard.runtime.kill", trace.WithAttributes(
		telemetry.ContainerID(inv.ContainerID)))
	defer span.End()
	log := w.Log.WithFields(logrus.Fields{"id": inv.ContainerID, "command": "kill"})
	// The target is found before the kill: once init is dying, runc
	// reports a zombie leader as stopped, without a pid.
	t, rec, terr := w.target(ctx, inv)
	if terr == nil {
		span.SetAttributes(telemetry.ProcessPID(t.PID))
		err := w.directKill(ctx, inv, t, rec)
		if err == nil && w.killDirectly(ctx, span, log, t, rec) {
			span.SetAttributes(telemetry.RuntimeExitCode(0))
			return 0
		}
		if err != nil {
			log.WithError(err).Debug("SIGKILL through the runtime")
		}
	}
	code := w.child(ctx, log, args)
	span.SetAttributes(telemetry.RuntimeExitCode(code))
	if code != 0 && (terr != nil || !w.dying(ctx, t)) {
		return code
	}
	if terr != nil {
		log.WithError(terr).Warn("no init to verify after the kill")
		return code
	}
	if code != 0 {
		// CRI's StopContainer sends the stop signal first and SIGKILL
		// only after the grace period. An init that died of the first
		// signal but waits in zap_pid_ns_processes for a task stuck in
		// FUSE is "stopped" to runc, whose kill then fails with "container
		// not running"; the shim reports that as already finished, and
		// containerd waits for an exit event that never comes. The
		// runtime's exit code stays the caller's answer.
		log.WithField("exit_code", code).Warn("the runtime refused to kill an init that is still exiting; verifying it dies")
	}
	w.rescue(ctx, span, log, t, rec, true)
	return code
}

// dying reports whether t is still there (same start time) and already
// exiting: a zombie thread-group leader whose other threads have not
// exited, or a task with PF_EXITING, such as a PID namespace's init in
// zap_pid_ns_processes. Only such an init may be verified after a kill
// the runtime refused: any other would not have been signalled at all.
func (w *Wrapper) dying(ctx context.Context, t killer.Target) bool {
	// One task read: an init asleep inside execve does not answer, and is
	// not dying.
	ctx, cancel := context.WithTimeout(ctx, w.killerOptions(nil, nil, false).ReadTimeout())
	defer cancel()
	st, err := proc.NewFS("").Stat(ctx, t.PID)
	if err != nil || st.StartTime != t.StartTime {
		return false
	}
	return st.State == "Z" || st.Exiting()
}

// forceDelete kills and rescues the init of a container about to be
// deleted with --force, which kills it anyway: runc's own kill there waits
// 10 s for a wedged init and then fails the delete. It returns ctx with
// its span.
func (w *Wrapper) forceDelete(ctx context.Context, inv oci.Invocation) context.Context {
	ctx, span := w.Tracer.Start(ctx, "fuseguard.runtime.kill", trace.WithAttributes(
		telemetry.ContainerID(inv.ContainerID), telemetry.ForceDelete(true)))
	defer span.End()
	log := w.Log.WithFields(logrus.Fields{"id": inv.ContainerID, "command": "delete --force"})
	t, rec, err := w.target(ctx, inv)
	if err != nil {
		log.WithError(err).Debug("no init to kill before the delete")
		return ctx
	}
	span.SetAttributes(telemetry.ProcessPID(t.PID))
	w.rescue(ctx, span, log, t, rec, false)
	return ctx
}

// rescue runs the bounded killer.Kill on t, under ctx's deadline, logs
// its report, with the tasks it could not read, and returns it.
func (w *Wrapper) rescue(ctx context.Context, span trace.Span, log logrus.FieldLogger, t killer.Target, rec *record.Record, verifyOnly bool) {
	rep, err := killer.Kill(ctx, t, w.killerOptions(log, rec, verifyOnly))
	w.logRescue(span, log, t, rec, rep, err)
}

// logRescue logs a rescue's report, and its error on span.
func (w *Wrapper) logRescue(span trace.Span, log logrus.FieldLogger, t killer.Target, rec *record.Record, rep killer.Report, err error) {
	span.SetAttributes(telemetry.Outcome(string(rep.Outcome)))
	entry := log.WithFields(logrus.Fields{
		"pid":      t.PID,
		"outcome":  rep.Outcome,
		"total_ms": float64(rep.Total) / float64(time.Millisecond),
		"aborted":  rep.Aborted,
		"record":   rec != nil,
	})
	if len(rep.Refused) > 0 {
		entry = entry.WithField("refused", rep.Refused)
	}
	// A task whose evidence could not be read (one asleep inside execve,
	// holding its exec lock) is named, or the operator never learns which.
	if unreadable := rep.Diagnosis.UnreadableTasks(); len(unreadable) > 0 {
		entry = entry.WithField("unreadable", unreadable)
	}
	switch {
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		entry.WithError(err).Error("rescue failed")
	case rep.Outcome == killer.OutcomeRecovered:
		entry.Warn("init was stuck; rescued by aborting its FUSE connections")
	default:
		entry.Info("init exited")
	}
}

// forwardedSignals are passed on to the runtime child, so that a caller
// that stops the wrapper stops the runtime: the wrapper then exits with
// the child's status.
var forwardedSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

// child runs the real runtime with args, the wrapper's stdio and ctx's
// trace context, and returns its exit code (128+signal when a signal ended
// it). It leaves no process behind: the signals in forwardedSignals go on
// to the child, and so does a SIGTERM when ctx is cancelled (the command's
// own SIGTERM handling cancels it); at ctx's deadline, or after
// runtimeKillTimeout, the child is SIGKILLed and reaped; and should the
// wrapper itself be SIGKILLed, the kernel sends the child SIGKILL
// (PR_SET_PDEATHSIG).
func (w *Wrapper) child(ctx context.Context, log logrus.FieldLogger, args []string) int {
	deadline := time.Now().Add(runtimeKillTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	hard, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	cancelled := ctx.Done()
	cmd := exec.Command(w.Runtime, args...)
	cmd.Args[0] = w.Runtime
	cmd.Env = telemetry.InjectEnv(ctx, w.Env)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = w.Stdin, w.Stdout, w.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// The parent death signal follows the thread that forked, not the
	// process (prctl(2)): keep this goroutine on that thread until the
	// child is reaped, so that the Go runtime cannot retire it early.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(w.Stderr, "fuseguard-runtime: run %s: %v\n", w.Runtime, err)
		return 1
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
wait:
	for {
		select {
		case err = <-exited:
			break wait
		case sig := <-sigs:
			log.WithField("signal", sig.String()).Info("forwarding a signal to the runtime")
			_ = cmd.Process.Signal(sig)
		case <-cancelled:
			cancelled = nil
			log.WithError(ctx.Err()).Info("cancelled: SIGTERM to the runtime")
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-hard.Done():
			log.WithField("pid", cmd.Process.Pid).Error("runtime did not return in time; killing it")
			_ = cmd.Process.Kill()
			err = <-exited // SIGKILL cannot be blocked: the wait is short
			break wait
		}
	}
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	fmt.Fprintf(w.Stderr, "fuseguard-runtime: run %s: %s\n", untrusted.Text(w.Runtime), untrusted.Line(err.Error()))
	return 1
}
