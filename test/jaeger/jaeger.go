package jaeger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/test/testenv"
)

// startTimeout bounds Jaeger's start-up, from exec to both ports answering.
const startTimeout = 30 * time.Second

// Jaeger is a running Jaeger owned by one test.
type Jaeger struct {
	// OTLPEndpoint is the OTLP/HTTP base URL (http://127.0.0.1:port), the
	// value for OTEL_EXPORTER_OTLP_ENDPOINT.
	OTLPEndpoint string
	// QueryURL is the UI and query API base URL (http://127.0.0.1:port).
	QueryURL string

	client *http.Client
	logs   *syncBuffer
}

// Start runs Jaeger on free loopback ports with tools/jaeger-config.yaml
// and waits until it accepts spans and answers queries. It builds
// bin/jaeger first if missing. t.Cleanup kills it.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout+startTimeout)
	defer cancel()
	bin, err := binary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	otlp, query, grpc := ports[0], ports[1], ports[2]
	j := &Jaeger{
		OTLPEndpoint: "http://" + otlp,
		QueryURL:     "http://" + query,
		client:       &http.Client{Timeout: 5 * time.Second},
		logs:         &syncBuffer{},
	}

	cmd := exec.Command(bin, "--config", filepath.Join(root, "tools", "jaeger-config.yaml"))
	cmd.Env = append(withoutOTEL(os.Environ()),
		"FUSEGUARD_JAEGER_OTLP_HTTP="+otlp,
		"FUSEGUARD_JAEGER_QUERY_HTTP="+query,
		"FUSEGUARD_JAEGER_QUERY_GRPC="+grpc,
	)
	cmd.Stdout, cmd.Stderr = j.logs, j.logs
	// Die with the test binary even if cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("jaeger output:\n%s", j.logs.String())
		}
	})

	if err := j.waitReady(ctx, exited); err != nil {
		t.Fatalf("jaeger not ready: %v\n%s", err, j.logs.String())
	}
	return j
}

// Env returns the environment entries that point a fuseguard process at
// this Jaeger under service name service.
func (j *Jaeger) Env(service string) []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + j.OTLPEndpoint,
		"OTEL_SERVICE_NAME=" + service,
	}
}

// waitReady polls until the query API answers and the OTLP receiver
// answers HTTP (any status: it is listening and serving).
func (j *Jaeger) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		if err = j.ping(ctx); err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("jaeger exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (j *Jaeger) ping(ctx context.Context) error {
	for _, u := range []string{j.QueryURL + "/api/services", j.OTLPEndpoint + "/v1/traces"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := j.client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if strings.HasSuffix(u, "/api/services") && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	return nil
}

// freePorts reserves n loopback ports and releases them for Jaeger; all are
// held at once so that they differ.
func freePorts(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// withoutOTEL drops OTEL_* so that Jaeger does not trace itself into an
// inherited endpoint.
func withoutOTEL(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return out
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
