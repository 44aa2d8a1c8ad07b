package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fuseguard/fuseguard/internal/watch"
	"github.com/fuseguard/fuseguard/killer"
)

func TestFSTypeLabel(t *testing.T) {
	for _, tc := range []struct {
		fsType, want string
	}{
		{"fuse", "fuse"},
		{"fuseblk", "fuseblk"},
		{"fuse.sshfs", "fuse.sshfs"},
		{"fuse.gcs-fuse_2", "fuse.gcs-fuse_2"},
		{"fuse." + strings.Repeat("a", 32), "fuse." + strings.Repeat("a", 32)},
		{"fuse." + strings.Repeat("a", 33), Other},
		{"fuse.", Other},
		{"fuse.-x", Other},
		{"fuse.SSHFS", Other},
		{"fuse.a b", Other},
		{"fuse.a\"} 1\nfuseguard_x{", Other},
		{"fuse.a\x00", Other},
		{"fuse.é", Other},
		{"fuse.a.b", Other},
		{"ext4", Other},
		{"", Other},
		{"fuse.sshfs\n", Other},
	} {
		if got := New().fsTypeLabel(tc.fsType); got != tc.want {
			t.Errorf("fsTypeLabel(%q) = %q, want %q", tc.fsType, got, tc.want)
		}
	}
}

// TestFSTypeLabelBounded: a container naming a new subtype per mount
// adds at most maxFSTypes label values.
func TestFSTypeLabelBounded(t *testing.T) {
	m := New()
	for i := range 3 * maxFSTypes {
		m.Observe(rescued(killer.OutcomeRecovered, killer.Abort{FSType: fmt.Sprintf("fuse.x%d", i), Owned: true, Done: true}))
	}
	m.Observe(rescued(killer.OutcomeRecovered, killer.Abort{FSType: "fuse.x0", Owned: true, Done: true}))
	if n := testutil.CollectAndCount(m.aborted); n != maxFSTypes+1 {
		t.Errorf("%d aborted series, want %d (maxFSTypes and %q)", n, maxFSTypes+1, Other)
	}
	if got := testutil.ToFloat64(m.aborted.WithLabelValues(Other, "true")); got != 2*maxFSTypes {
		t.Errorf("aborted{fs_type=%q} = %v, want %d", Other, got, 2*maxFSTypes)
	}
	if got := testutil.ToFloat64(m.aborted.WithLabelValues("fuse.x0", "true")); got != 2 {
		t.Errorf("aborted{fs_type=fuse.x0} = %v, want 2 (a known value stays)", got)
	}
}

func rescued(o killer.Outcome, aborted ...killer.Abort) watch.Event {
	return watch.Event{Kind: watch.EventRescued, Report: &killer.Report{Outcome: o, Aborted: aborted, Total: 300 * time.Millisecond}}
}

func TestObserve(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []watch.Event
		want   string // exposition of the fuseguard_ metrics named in it
		names  []string
	}{{
		name:   "tracked and forgotten",
		events: []watch.Event{{Kind: watch.EventTracked}, {Kind: watch.EventTracked}, {Kind: watch.EventForgotten}, {Kind: watch.EventReady}},
		want: `# HELP fuseguard_containers_tracked Containers whose init the watcher tracks.
# TYPE fuseguard_containers_tracked gauge
fuseguard_containers_tracked 1
`,
		names: []string{"fuseguard_containers_tracked"},
	}, {
		name:   "detected and errors",
		events: []watch.Event{{Kind: watch.EventDetected}, {Kind: watch.EventError}, {Kind: watch.EventError}, {Kind: watch.EventExiting}},
		want: `# HELP fuseguard_stuck_exits_detected_total Inits found exiting for longer than the grace (each starts a rescue).
# TYPE fuseguard_stuck_exits_detected_total counter
fuseguard_stuck_exits_detected_total 1
# HELP fuseguard_watcher_errors_total Failures the watcher went on without (records unreadable or not saved, mount tables or the state directory not read); see its log.
# TYPE fuseguard_watcher_errors_total counter
fuseguard_watcher_errors_total 2
`,
		names: []string{"fuseguard_stuck_exits_detected_total", "fuseguard_watcher_errors_total"},
	}, {
		name:   "exit notifications, then polling",
		events: []watch.Event{{Kind: watch.EventExitSource}, {Kind: watch.EventExitSource, Err: watch.ErrNoExitEvents}},
		want: `# HELP fuseguard_watcher_exit_notifications 1 while the watcher learns from the kernel's taskstats notifications which init begins to exit; 0 while it polls every init (see its log for why).
# TYPE fuseguard_watcher_exit_notifications gauge
fuseguard_watcher_exit_notifications 0
`,
		names: []string{"fuseguard_watcher_exit_notifications"},
	}, {
		name:   "exit notifications",
		events: []watch.Event{{Kind: watch.EventExitSource}},
		want: `# HELP fuseguard_watcher_exit_notifications 1 while the watcher learns from the kernel's taskstats notifications which init begins to exit; 0 while it polls every init (see its log for why).
# TYPE fuseguard_watcher_exit_notifications gauge
fuseguard_watcher_exit_notifications 1
`,
		names: []string{"fuseguard_watcher_exit_notifications"},
	}, {
		name: "outcomes, unknown ones as other",
		events: []watch.Event{
			rescued(killer.OutcomeRecovered), rescued(killer.OutcomeRecovered), rescued(killer.OutcomeStillStuck),
			rescued("made-up"), rescued(""),
			{Kind: watch.EventRescued}, // no report: not counted
		},
		want: `# HELP fuseguard_rescues_total Finished rescues by outcome (exited, recovered, still-stuck, already-gone).
# TYPE fuseguard_rescues_total counter
fuseguard_rescues_total{outcome="already-gone"} 0
fuseguard_rescues_total{outcome="exited"} 0
fuseguard_rescues_total{outcome="other"} 2
fuseguard_rescues_total{outcome="recovered"} 2
fuseguard_rescues_total{outcome="still-stuck"} 1
`,
		names: []string{"fuseguard_rescues_total"},
	}, {
		name: "aborted by fs type and ownership, done only",
		events: []watch.Event{rescued(killer.OutcomeRecovered,
			killer.Abort{FSType: "fuse.sshfs", Owned: true, Done: true},
			killer.Abort{FSType: "fuse.sshfs", Owned: false, Done: true},
			killer.Abort{FSType: "fuse.sshfs", Owned: true, Done: false, Err: "EACCES"},
			killer.Abort{FSType: "fuse.\"evil\"", Owned: true, Done: true},
		)},
		want: `# HELP fuseguard_connections_aborted_total FUSE connections aborted by rescues, by fs type and whether the container owned them.
# TYPE fuseguard_connections_aborted_total counter
fuseguard_connections_aborted_total{fs_type="fuse.sshfs",owned="false"} 1
fuseguard_connections_aborted_total{fs_type="fuse.sshfs",owned="true"} 1
fuseguard_connections_aborted_total{fs_type="other",owned="true"} 1
`,
		names: []string{"fuseguard_connections_aborted_total"},
	}, {
		name: "refused by class, never by reason text",
		events: []watch.Event{{Kind: watch.EventRescued, Report: &killer.Report{Outcome: killer.OutcomeStillStuck, Refused: []killer.Abort{
			{Refusal: killer.RefusalShared, Reason: "shared with the host (fuse.x)"},
			{Refusal: killer.RefusalShared},
			{Refusal: killer.RefusalUnproven},
			{Refusal: killer.RefusalOwnershipUnknown},
			{Refusal: killer.RefusalNotDedicated, Reason: "used by another live container c2"},
			{Refusal: "task 1 (evil\") waits", Reason: "task 1 (evil\") waits"},
			{},
		}}}},
		want: `# HELP fuseguard_aborts_refused_total FUSE connections a rescue's policy kept, by reason (shared, not-dedicated, unproven, ownership-unknown).
# TYPE fuseguard_aborts_refused_total counter
fuseguard_aborts_refused_total{reason="not-dedicated"} 1
fuseguard_aborts_refused_total{reason="other"} 2
fuseguard_aborts_refused_total{reason="ownership-unknown"} 1
fuseguard_aborts_refused_total{reason="shared"} 2
fuseguard_aborts_refused_total{reason="unproven"} 1
`,
		names: []string{"fuseguard_aborts_refused_total"},
	}, {
		name:   "duration",
		events: []watch.Event{rescued(killer.OutcomeRecovered), rescued(killer.OutcomeExited)},
		want: `# HELP fuseguard_rescue_duration_seconds How long rescues took.
# TYPE fuseguard_rescue_duration_seconds histogram
fuseguard_rescue_duration_seconds_bucket{le="0.01"} 0
fuseguard_rescue_duration_seconds_bucket{le="0.025"} 0
fuseguard_rescue_duration_seconds_bucket{le="0.05"} 0
fuseguard_rescue_duration_seconds_bucket{le="0.1"} 0
fuseguard_rescue_duration_seconds_bucket{le="0.25"} 0
fuseguard_rescue_duration_seconds_bucket{le="0.5"} 2
fuseguard_rescue_duration_seconds_bucket{le="1"} 2
fuseguard_rescue_duration_seconds_bucket{le="2.5"} 2
fuseguard_rescue_duration_seconds_bucket{le="5"} 2
fuseguard_rescue_duration_seconds_bucket{le="10"} 2
fuseguard_rescue_duration_seconds_bucket{le="30"} 2
fuseguard_rescue_duration_seconds_bucket{le="+Inf"} 2
fuseguard_rescue_duration_seconds_sum 0.6
fuseguard_rescue_duration_seconds_count 2
`,
		names: []string{"fuseguard_rescue_duration_seconds"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := New()
			for _, ev := range tc.events {
				m.Observe(ev)
			}
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(tc.want), tc.names...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestRegistryLint: the metrics follow Prometheus's naming conventions.
func TestRegistryLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(New().Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, Namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}
