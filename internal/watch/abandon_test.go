package watch

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fuseguard/fuseguard/internal/telemetry"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// holdingTracer is an embedding program's tracer that hangs, as one
// exporting synchronously to a collector that does not answer would: the
// first rescue span of container id it is asked to start does not start
// until release is closed. Every other span starts at once.
//
// It is how TestOverdueRescueAbandoned makes a rescue overrun its deadline:
// on the real kernel no rescue can. Every /proc read of killer.Kill that
// can sleep on a task's lock (stat, stack, syscall, wchan, ns links) is
// bounded by the rescue's context, and those read directly (status,
// mountinfo, cgroup, fdinfo, the task list) wait on no lock a task holds,
// not even one inside execve behind an unanswered FLUSH (W6, 6.18: see
// TestExecHoldRescued, which returns within its bound); fusectl's files
// answer at once. A wedged /proc or fusectl would have to be faked, which
// would test the fake.
type holdingTracer struct {
	trace.Tracer
	id      string
	held    chan struct{} // closed when the rescue is held
	release chan struct{}
	once    sync.Once
}

func newHoldingTracer(id string) *holdingTracer {
	h := &holdingTracer{
		Tracer: noop.NewTracerProvider().Tracer(""),
		id:     id, held: make(chan struct{}), release: make(chan struct{}),
	}
	return h
}

func (h *holdingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if name == "fuseguard.watch.rescue" {
		cfg := trace.NewSpanStartConfig(opts...)
		for _, a := range cfg.Attributes() {
			if a.Key == telemetry.KeyContainerID && a.Value.AsString() == h.id {
				first := false
				h.once.Do(func() { first = true })
				if first {
					close(h.held)
					<-h.release
				}
			}
		}
	}
	return h.Tracer.Start(ctx, name, opts...)
}

// let releases the held rescue; idempotent.
func (h *holdingTracer) let() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// A rescue that runs past its deadline is abandoned at RescueTimeout and
// abandonSlack: its slot goes to the next container (with MaxRescues 1,
// another container's stuck exit detected meanwhile waits for it and is
// rescued then), the failure is counted and shown by status and the log,
// and the late result is taken without counting the failure twice; the
// container is retried after the backoff and rescued.
func TestOverdueRescueAbandoned(t *testing.T) {
	dir := testenv.StateDir(t)
	const (
		timeout = 3 * time.Second // > the grace: the other container is detected while the slot is held
		retry   = 200 * time.Millisecond
	)
	overdue := fixture.W2(t, "read")
	other := fixture.W2(t, "read")
	recOverdue := saveRecord(t, dir, "overdue", overdue.InitPID)
	recOther := saveRecord(t, dir, "other", other.InitPID)
	log, hook := testLogger(t)
	tracer := newHoldingTracer(recOverdue.ID)
	o := Options{
		CheckInterval: boundCheck, RescueTimeout: timeout, MaxRescues: 1,
		RetryInterval: retry, MaxRetryInterval: 4 * retry, Log: log, Tracer: tracer,
	}
	r := startWatcher(t, dir, o)
	// Registered after the watcher's: cleanups run last first, and the
	// watcher's shutdown waits for the held rescue.
	t.Cleanup(tracer.let)
	r.ev.waitRecorded(t, recOverdue.ID, overdue.Conn, 2*time.Second)
	r.ev.waitRecorded(t, recOther.ID, other.Conn, 2*time.Second)

	if err := overdue.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tracer.held:
	case <-time.After(isoBound + 2*time.Second):
		t.Fatalf("no rescue of %s started; events %v", recOverdue.ID, r.ev.all())
	}
	detected := r.ev.wait(t, EventDetected, recOverdue.ID, time.Second)
	// The other container's exit begins while the only slot is held.
	otherKilled := time.Now()
	if err := other.Kill(); err != nil {
		t.Fatal(err)
	}

	abandonAt := timeout + abandonSlack
	slack := 500*time.Millisecond + raceSlack/4
	ab := r.ev.wait(t, EventAbandoned, recOverdue.ID, abandonAt+slack+time.Second)
	took := ab.Time.Sub(detected.Time)
	t.Logf("rescue abandoned %s after it started (deadline %s, slack %s)", took.Round(time.Millisecond), timeout, abandonSlack)
	// The deadline counts from the loop's clock at the start of the round
	// that detected it; the detected event's time is taken a little later,
	// as it is emitted: hence early, a tenth of a second at most.
	const early = 100 * time.Millisecond
	if took < abandonAt-early || took > abandonAt+slack {
		t.Errorf("abandoned %s after the rescue started, want between %s and %s", took, abandonAt-early, abandonAt+slack)
	}
	if n := r.ev.count(EventAbandoned, recOverdue.ID); n != 1 {
		t.Errorf("%d abandoned events, want 1", n)
	}
	if det, ok := r.ev.waitOK(EventDetected, recOther.ID, 0); !ok || !det.Time.Before(ab.Time) {
		t.Fatalf("the other container's stuck exit was not detected before the rescue was abandoned (detected %v at %v): the test shows no waiting for the slot", ok, det.Time)
	}

	// The abandoned slot is given back: the other container, queued
	// behind the held rescue, is rescued while it is still held.
	select {
	case <-other.Exited():
	case <-time.After(abandonAt + isoBound + 2*time.Second):
		t.Fatalf("the other container was not rescued beside the abandoned rescue; events %v\n%s", r.ev.all(), explainRescues(r))
	}
	if took, bound := time.Since(otherKilled), abandonAt+isoBound; took > bound {
		t.Errorf("the other container was reaped %s after its init was killed, want within %s", took, bound)
	}
	resc := r.ev.wait(t, EventRescued, recOther.ID, time.Second)
	if resc.Err != nil || len(aborted(resc.Report)) != 1 || aborted(resc.Report)[0] != other.Conn {
		t.Errorf("rescue of the other container: %v, aborted %v; want [%d]", resc.Err, aborted(resc.Report), other.Conn)
	}
	if !resc.Time.After(ab.Time) {
		t.Errorf("the other container was rescued at %v, before the slot was given back at %v", resc.Time, ab.Time)
	}

	// State and log say it was abandoned, while its rescue still has not
	// returned.
	st := waitStatus(t, dir, 2*time.Second, func(st Status) bool {
		cw := watchOf(st, recOverdue.ID)
		return cw != nil && cw.Rescue == RescueOverdue && st.Watcher.RescuesRunning == 0
	})
	if cw := watchOf(st, recOverdue.ID); cw.Failures != 1 || !strings.Contains(cw.LastError, "abandoned") {
		t.Errorf("status of the abandoned container: %+v; want 1 failure, an error saying abandoned", cw)
	}
	if st.Watcher.RescuesAbandoned != 1 || st.Watcher.MaxRescues != 1 {
		t.Errorf("watcher state %+v; want 1 rescue abandoned", st.Watcher)
	}
	if n := countLog(hook.AllEntries(), logrus.ErrorLevel, recOverdue.ID, "rescue overran its deadline"); n != 1 {
		t.Errorf("%d log lines for the overrun, want 1", n)
	}
	if n := r.ev.count(EventRescued, recOverdue.ID); n != 0 {
		t.Fatalf("the held rescue returned %d times while held", n)
	}

	// The late result is taken: its deadline has long passed, so it
	// failed without touching anything, and the failure, counted when the
	// rescue was abandoned, is not counted again. The container is retried
	// after the backoff and rescued.
	tracer.let()
	late := r.ev.wait(t, EventRescued, recOverdue.ID, RescueBound(o.withDefaults().RecoverTimeout))
	t.Logf("late result of the abandoned rescue: %v", late.Err)
	if late.Err == nil || len(aborted(late.Report)) != 0 {
		t.Errorf("late result past its deadline: %v, aborted %v; want an error, nothing aborted", late.Err, aborted(late.Report))
	}
	if !slices.ContainsFunc(hook.AllEntries(), func(e *logrus.Entry) bool {
		return e.Data["container"] == recOverdue.ID && strings.HasPrefix(e.Message, "rescue failed") && e.Data["failures"] == 1
	}) {
		t.Errorf("no log line of the late result with the abandoned rescue counted once (failures=1)")
	}
	select {
	case <-overdue.Exited():
	case <-time.After(backoff(retry, o.MaxRetryInterval, 1) + isoBound + 2*time.Second):
		t.Fatalf("the abandoned container was not rescued on retry; events %v\n%s", r.ev.all(), explainRescues(r))
	}
	// Its events: detected, rescued (late), detected (retry), rescued.
	var rescues []Event
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		rescues = rescues[:0]
		for _, ev := range r.ev.all() {
			if ev.ID == recOverdue.ID && (ev.Kind == EventDetected || ev.Kind == EventRescued) {
				rescues = append(rescues, ev)
			}
		}
		if len(rescues) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	if len(rescues) < 4 || rescues[1].Kind != EventRescued || rescues[2].Kind != EventDetected {
		t.Fatalf("events of the abandoned container: %v", rescues)
	}
	if gap := rescues[2].Time.Sub(rescues[1].Time); gap < retry {
		t.Errorf("retried %s after the late result, before its backoff %s", gap, retry)
	}
	if ev := rescues[3]; ev.Err != nil || len(aborted(ev.Report)) != 1 || aborted(ev.Report)[0] != overdue.Conn {
		t.Errorf("retried rescue: %v, aborted %v; want [%d]", ev.Err, aborted(ev.Report), overdue.Conn)
	}
}

// countLog counts the entries at level for container id whose message
// starts with prefix.
func countLog(entries []*logrus.Entry, level logrus.Level, id, prefix string) int {
	n := 0
	for _, e := range entries {
		if e.Level == level && e.Data["container"] == id && strings.HasPrefix(e.Message, prefix) {
			n++
		}
	}
	return n
}
