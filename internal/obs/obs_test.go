package obs

import (
	"bytes"
	"context"
	"testing"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestLoggerKeepsTheCallers(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	Logger(l).Info("kept")
	if !bytes.Contains(buf.Bytes(), []byte("kept")) {
		t.Fatalf("the caller's logger was replaced: %q", buf.String())
	}
	Logger(nil).Error("discarded") // must not panic or print
}

func TestTracerKeepsTheCallers(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	_, span := Tracer(tp.Tracer("t")).Start(context.Background(), "kept")
	span.End()
	if n := len(rec.Ended()); n != 1 {
		t.Fatalf("the caller's tracer recorded %d spans, want 1", n)
	}
	_, span = Tracer(nil).Start(context.Background(), "dropped")
	span.End()
	if span.SpanContext().IsValid() {
		t.Fatal("the default tracer produced a real span")
	}
}
