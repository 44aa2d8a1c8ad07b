package deps

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

const module = "github.com/fuseguard/fuseguard"

// Import path prefixes a package must not link, by rule.
var (
	fuseServer = []string{"github.com/hanwen/go-fuse/"}
	testCode   = []string{module + "/test/", module + "/internal/demo", module + "/cmd/fuseguard-demo"}
	otelSDK    = []string{
		"go.opentelemetry.io/otel/sdk",
		"go.opentelemetry.io/otel/exporters/",
		"google.golang.org/grpc",
	}
	// What only the full binary needs — the trace exporter and its
	// protocol stack, the metrics server, doctor — and whose package
	// initialisation the runtime wrapper and its hooks, run on every
	// container's start and kill, must not pay.
	heavy = []string{
		"go.opentelemetry.io/proto/",
		"google.golang.org/protobuf/",
		"google.golang.org/genproto/",
		"github.com/prometheus/",
		"golang.org/x/net/",
		module + "/internal/telemetry/otelsdk",
		module + "/internal/metrics",
		module + "/internal/doctor",
	}
)

// leanTag builds cmd/fuseguard as fuseguard-runtime (cmd/fuseguard/lean.go).
const leanTag = "fuseguard_lean"

// listDeps returns every package pkg links (go list -deps, as built by
// the Makefile: CGO_ENABLED=0, with the build tags given), pkg included.
func listDeps(t *testing.T, pkg string, tags ...string) []string {
	t.Helper()
	gobin := testenv.RequireBinary(t, "go")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "list", "-tags", strings.Join(tags, ","), "-deps", "-f", "{{.ImportPath}}", pkg)
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr.Bytes())
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != pkg {
		t.Fatalf("go list -deps %s: %d packages, the last %q: want the package itself last", pkg, len(deps), deps[len(deps)-1:])
	}
	return deps
}

// matching returns the deps under any of prefixes (a prefix ending in "/"
// matches below it; one without, the path itself and below it).
func matching(deps, prefixes []string) []string {
	var hits []string
	for _, d := range deps {
		for _, p := range prefixes {
			if d == strings.TrimSuffix(p, "/") || strings.HasPrefix(d, strings.TrimSuffix(p, "/")+"/") {
				hits = append(hits, d)
				break
			}
		}
	}
	return hits
}

func TestNodeBinaryLinksNoFUSEServerNorTestCode(t *testing.T) {
	deps := listDeps(t, module+"/cmd/fuseguard")
	if hits := matching(deps, append(fuseServer, testCode...)); len(hits) != 0 {
		t.Errorf("cmd/fuseguard links %d forbidden packages (a FUSE server, test code or the demo):\n%s", len(hits), strings.Join(hits, "\n"))
	}
}

// TestRuntimeBinaryIsLean: fuseguard-runtime, the lean build of
// cmd/fuseguard, links none of the OpenTelemetry SDK and exporter, gRPC,
// protobuf, Prometheus, doctor, a FUSE server or test code — but does link
// the wrapper, the hooks and the rescue, which it runs itself.
func TestRuntimeBinaryIsLean(t *testing.T) {
	deps := listDeps(t, module+"/cmd/fuseguard", leanTag)
	forbidden := append(append(append([]string{}, heavy...), otelSDK...), append(fuseServer, testCode...)...)
	if hits := matching(deps, forbidden); len(hits) != 0 {
		t.Errorf("fuseguard-runtime (-tags %s) links %d heavy or forbidden packages:\n%s", leanTag, len(hits), strings.Join(hits, "\n"))
	}
	for _, p := range []string{"/internal/wrapper", "/internal/hook", "/killer", "/internal/watch"} {
		if len(matching(deps, []string{module + p})) == 0 {
			t.Errorf("fuseguard-runtime does not link %s%s, which it runs itself", module, p)
		}
	}
}

func TestLibraryTracesWithTheAPIOnly(t *testing.T) {
	for _, pkg := range []string{"executor", "killer", "proc", "fuseconn", "record", "config"} {
		t.Run(pkg, func(t *testing.T) {
			deps := listDeps(t, module+"/"+pkg)
			if hits := matching(deps, append(append(otelSDK, fuseServer...), testCode...)); len(hits) != 0 {
				t.Errorf("%s links %d forbidden packages (OpenTelemetry SDK or exporter, gRPC, a FUSE server, test code):\n%s", pkg, len(hits), strings.Join(hits, "\n"))
			}
		})
	}
}

// TestRulesSeeWhatTheyForbid: the same lists find what the commands do
// link on purpose — the demo's FUSE server, the commands' SDK and
// exporter — so an empty result above is the graph's, not a blind check.
func TestRulesSeeWhatTheyForbid(t *testing.T) {
	demo := listDeps(t, module+"/cmd/fuseguard-demo")
	if len(matching(demo, fuseServer)) == 0 || len(matching(demo, testCode)) == 0 {
		t.Errorf("cmd/fuseguard-demo: the rules find no go-fuse or test package in\n%s", strings.Join(demo, "\n"))
	}
	node := listDeps(t, module+"/cmd/fuseguard")
	for _, p := range append(append([]string{}, otelSDK...), heavy...) {
		if len(matching(node, []string{p})) == 0 {
			t.Errorf("cmd/fuseguard: the rules find no %s package; the command sets up the SDK and its OTLP/HTTP exporter, serves metrics and runs doctor", p)
		}
	}
}
