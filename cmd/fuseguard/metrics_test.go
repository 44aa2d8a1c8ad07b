package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/killer"
	"github.com/fuseguard/fuseguard/proc"
	"github.com/fuseguard/fuseguard/record"
	"github.com/fuseguard/fuseguard/test/fgcmd"
	"github.com/fuseguard/fuseguard/test/fgwatch"
	"github.com/fuseguard/fuseguard/test/fixture"
	"github.com/fuseguard/fuseguard/test/testenv"
)

// scrape reads the metrics at addr.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s\n%s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return mfs
}

// sample is the value of the series of name with labels (name=value
// pairs), and whether it is there; a histogram's value is its count.
func sample(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		for i, l := range m.GetLabel() {
			if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// metricsAddr is the address the watcher logged it serves metrics at.
func metricsAddr(t *testing.T, logPath string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range fgcmd.LogLinesBy(logPath, "msg", "serving metrics at /metrics") {
			var l struct{ Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Addr != "" {
				return l.Addr
			}
		}
	}
	b, _ := os.ReadFile(logPath)
	t.Fatalf("watcher did not log its metrics address:\n%s", b)
	return ""
}

// waitMetric scrapes until the series of name with labels has value want,
// within bound, and returns the last scrape.
func waitMetric(t *testing.T, addr string, bound time.Duration, want float64, name string, labels ...string) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		mfs := scrape(t, addr)
		got, ok := sample(mfs, name, labels...)
		if ok && got == want {
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v (present %v) after %v, want %v", name, labels, got, ok, bound, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWatchMetricsRescue scrapes `fuseguard watch --metrics-addr` while it
// tracks a real W2 wedge and after it rescued it.
func TestWatchMetricsRescue(t *testing.T) {
	testenv.RequireRoot(t)
	dir := testenv.StateDir(t)
	c := fixture.W2(t, "read")
	rec, err := record.NewRecord(proc.NewFS(""), "metrics", c.InitPID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rc, ok := rec.Lookup(c.Conn)
	if !ok || !rc.Owned {
		t.Fatalf("record: conn %d present=%v owned=%v: %+v", c.Conn, ok, rc.Owned, rec.Connections)
	}
	if err := (record.Store{Dir: dir}).Save(rec); err != nil {
		t.Fatal(err)
	}
	fgwatch.StartWatcher(t, dir, "watch.log", "--metrics-addr", "127.0.0.1:0")
	addr := metricsAddr(t, filepath.Join(dir, "watch.log"))

	waitMetric(t, addr, 5*time.Second, 1, "fuseguard_containers_tracked")
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	bound := watch.DefaultGrace + watch.RescueBound(killer.DefaultRecoverTimeout) + 2*time.Second
	select {
	case <-c.Exited():
	case <-time.After(bound):
		b, _ := os.ReadFile(filepath.Join(dir, "watch.log"))
		t.Fatalf("init not reaped within %v:\n%s", bound, b)
	}
	mfs := waitMetric(t, addr, 5*time.Second, 1, "fuseguard_rescues_total", "outcome", string(killer.OutcomeRecovered))
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "watch.log"))
			t.Logf("watch.log:\n%s", b)
		}
	}()

	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"fuseguard_stuck_exits_detected_total", nil, 1},
		{"fuseguard_rescues_total", []string{"outcome", string(killer.OutcomeStillStuck)}, 0},
		{"fuseguard_rescues_total", []string{"outcome", string(killer.OutcomeExited)}, 0},
		{"fuseguard_connections_aborted_total", []string{"fs_type", rc.FSType, "owned", "true"}, 1},
		{"fuseguard_aborts_refused_total", []string{"reason", string(killer.RefusalShared)}, 0},
		{"fuseguard_rescue_duration_seconds", nil, 1},
	}
	for _, w := range want {
		if got, ok := sample(mfs, w.name, w.labels...); !ok || got != w.value {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	if n := len(mfs["fuseguard_connections_aborted_total"].GetMetric()); n != 1 {
		t.Errorf("%d aborted series, want 1", n)
	}
	for _, name := range []string{"fuseguard_proc_reads_in_flight", "fuseguard_proc_reads_timed_out", "fuseguard_watcher_errors_total"} {
		if _, ok := sample(mfs, name); !ok {
			t.Errorf("%s missing", name)
		}
	}
	// init exited: the watcher forgets the container.
	waitMetric(t, addr, 5*time.Second, 0, "fuseguard_containers_tracked")
	t.Logf("rescued; fs_type %q", rc.FSType)
}
