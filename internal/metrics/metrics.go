// Package metrics exports what the node watcher does as Prometheus metrics.
//
// It turns the watcher's events (watch.Options.OnEvent) into metrics on a
// registry of its own, so the watch package stays free of Prometheus and
// an embedding program's default registry is never touched.
//
// Container-controlled text never becomes a label value: a FUSE
// connection's fs type is reported only when it is "fuse", "fuseblk" or
// "fuse.<subtype>" with a short conservative subtype, and only for the
// first maxFSTypes such values; anything else is "other". Every other label
// takes its values from a fixed set.
package metrics

import (
	"regexp"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
)

// Namespace prefixes every metric's name.
const Namespace = "fuseguard"

// Other is the label value of anything outside a label's fixed set.
const Other = "other"

// maxFSTypes caps the distinct fs_type label values: a container can name
// its FUSE subtype freely, so past this many, new ones are counted as
// Other.
const maxFSTypes = 16

// fsTypePattern is what an fs type must look like to be a label value.
var fsTypePattern = regexp.MustCompile(`^(fuse|fuseblk|fuse\.[a-z0-9][a-z0-9_-]{0,31})$`)

// Metrics are the watcher's metrics.
type Metrics struct {
	reg *prometheus.Registry

	tracked  prometheus.Gauge
	detected prometheus.Counter
	rescues  *prometheus.CounterVec
	aborted  *prometheus.CounterVec
	refused  *prometheus.CounterVec
	duration prometheus.Histogram
	errors   prometheus.Counter
	exitNote prometheus.Gauge

	mu      sync.Mutex
	fsTypes map[string]struct{} // fs_type values given out, at most maxFSTypes
}

// New returns the watcher's metrics, registered on a new registry with the
// Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		tracked: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "containers_tracked",
			Help: "Containers whose init the watcher tracks.",
		}),
		detected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stuck_exits_detected_total",
			Help: "Inits found exiting for longer than the grace (each starts a rescue).",
		}),
		rescues: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rescues_total",
			Help: "Finished rescues by outcome (exited, recovered, still-stuck, already-gone).",
		}, []string{"outcome"}),
		aborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "connections_aborted_total",
			Help: "FUSE connections aborted by rescues, by fs type and whether the container owned them.",
		}, []string{"fs_type", "owned"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "aborts_refused_total",
			Help: "FUSE connections a rescue's policy kept, by reason (shared, not-dedicated, unproven, ownership-unknown).",
		}, []string{"reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "rescue_duration_seconds",
			Help:    "How long rescues took.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "watcher_errors_total",
			Help: "Failures the watcher went on without (records unreadable or not saved, mount tables or the state directory not read); see its log.",
		}),
		exitNote: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "watcher_exit_notifications",
			Help: "1 while the watcher learns from the kernel's taskstats notifications which init begins to exit; 0 while it polls every init (see its log for why).",
		}),
		fsTypes: map[string]struct{}{},
	}
	blocked := func(abandoned bool) func() float64 {
		return func() float64 {
			inFlight, gaveUp := proc.BlockedReads()
			if abandoned {
				return float64(gaveUp)
			}
			return float64(inFlight)
		}
	}
	m.reg.MustRegister(m.tracked, m.detected, m.rescues, m.aborted, m.refused, m.duration, m.errors, m.exitNote,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "proc_reads_in_flight",
			Help: "Reads of /proc that can block (stack, syscall, stat, …) still in the kernel, abandoned ones included.",
		}, blocked(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "proc_reads_timed_out",
			Help: "Reads of /proc abandoned at their deadline and still blocked in the kernel (each holds a thread).",
		}, blocked(true)),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, o := range []killer.Outcome{killer.OutcomeExited, killer.OutcomeRecovered, killer.OutcomeStillStuck, killer.OutcomeAlreadyGone} {
		m.rescues.WithLabelValues(string(o)) // shown as 0 before the first rescue: alerts can use rate()
	}
	for _, r := range []killer.Refusal{killer.RefusalShared, killer.RefusalUnproven, killer.RefusalOwnershipUnknown, killer.RefusalNotDedicated} {
		m.refused.WithLabelValues(string(r))
	}
	return m
}

// Registry is the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe counts one watcher event; it is safe to call from any goroutine
// and returns at once (watch.Options.OnEvent).
func (m *Metrics) Observe(ev watch.Event) {
	switch ev.Kind {
	case watch.EventTracked:
		m.tracked.Inc()
	case watch.EventForgotten:
		m.tracked.Dec()
	case watch.EventDetected:
		m.detected.Inc()
	case watch.EventError:
		m.errors.Inc()
	case watch.EventExitSource:
		if ev.Err == nil {
			m.exitNote.Set(1)
		} else {
			m.exitNote.Set(0)
		}
	case watch.EventRescued:
		if ev.Report != nil {
			m.rescued(ev.Report)
		}
	}
}

func (m *Metrics) rescued(rep *killer.Report) {
	m.duration.Observe(rep.Total.Seconds())
	for _, a := range rep.Aborted {
		if a.Done { // not in a dry run, nor when the abort failed
			m.aborted.WithLabelValues(m.fsTypeLabel(a.FSType), strconv.FormatBool(a.Owned)).Inc()
		}
	}
	for _, a := range rep.Refused {
		m.refused.WithLabelValues(refusalLabel(a.Refusal)).Inc()
	}
	// Last: a scrape that sees the rescue sees what it aborted and refused.
	m.rescues.WithLabelValues(outcomeLabel(rep.Outcome)).Inc()
}

// fsTypeLabel is fsType if it may be a label value, else Other.
func (m *Metrics) fsTypeLabel(fsType string) string {
	if !fsTypePattern.MatchString(fsType) {
		return Other
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.fsTypes[fsType]; ok {
		return fsType
	}
	if len(m.fsTypes) >= maxFSTypes {
		return Other
	}
	m.fsTypes[fsType] = struct{}{}
	return fsType
}

func outcomeLabel(o killer.Outcome) string {
	switch o {
	case killer.OutcomeExited, killer.OutcomeRecovered, killer.OutcomeStillStuck, killer.OutcomeAlreadyGone:
		return string(o)
	}
	return Other
}

func refusalLabel(r killer.Refusal) string {
	switch r {
	case killer.RefusalShared, killer.RefusalUnproven, killer.RefusalOwnershipUnknown, killer.RefusalNotDedicated:
		return string(r)
	}
	return Other
}
