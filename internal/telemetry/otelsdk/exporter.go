package otelsdk

import (
	"context"
	"fmt"
	"sync"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// errorRecorder keeps export errors for Shutdown to return instead of
// handing them to the batch processor, which would pass them to the otel
// global error handler and print them on stderr, in the middle of a hook's
// or runtime's output.
type errorRecorder struct {
	sdktrace.SpanExporter

	mu      sync.Mutex
	err     error // the first failure
	dropped int   // spans in failed exports
}

func (e *errorRecorder) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.dropped += len(spans)
		e.mu.Unlock()
	}
	return nil
}

// take returns and clears the recorded failure, wrapped in ErrExport.
func (e *errorRecorder) take() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		return nil
	}
	err := fmt.Errorf("%w: %d spans dropped: %w", ErrExport, e.dropped, e.err)
	e.err, e.dropped = nil, 0
	return err
}
