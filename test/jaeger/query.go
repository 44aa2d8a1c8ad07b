package jaeger

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Reference types in Span.References.
const (
	ChildOf     = "CHILD_OF"     // the span's parent
	FollowsFrom = "FOLLOWS_FROM" // a span link
)

// queryTimeout bounds one query when the caller's context has no deadline.
const queryTimeout = 10 * time.Second

// Trace is one trace as Jaeger's HTTP API returns it.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
}

// Span is one span of a Trace. IDs are lower-case hex, trace IDs padded
// to 32 digits as OpenTelemetry prints them.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"` // µs since the epoch
	Duration      int64       `json:"duration"`  // µs
	Tags          []KeyValue  `json:"tags"`
	ProcessID     string      `json:"processID"`
}

// Reference ties a span to its parent (ChildOf) or a linked span
// (FollowsFrom).
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// KeyValue is a tag; Value is a string, bool, float64 (JSON number) or
// as Type says.
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Process is the emitting service of spans.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Tag returns the value of the tag key.
func (s Span) Tag(key string) (any, bool) {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Parent returns the span ID of s's parent; "" for a root span.
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == ChildOf && r.TraceID == s.TraceID {
			return r.SpanID
		}
	}
	return ""
}

// Links returns s's FollowsFrom references.
func (s Span) Links() []Reference {
	var out []Reference
	for _, r := range s.References {
		if r.RefType == FollowsFrom {
			out = append(out, r)
		}
	}
	return out
}

// Spans returns the spans named name across traces.
func Spans(traces []Trace, name string) []Span {
	var out []Span
	for _, tr := range traces {
		for _, s := range tr.Spans {
			if s.OperationName == name {
				out = append(out, s)
			}
		}
	}
	return out
}

// Traces returns the traces Jaeger holds for service (up to 1000, the
// last hour).
func (j *Jaeger) Traces(ctx context.Context, service string) ([]Trace, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, queryTimeout)
		defer cancel()
	}
	q := url.Values{
		"service": {service},
		"limit":   {"1000"},
		"start":   {fmt.Sprint(time.Now().Add(-time.Hour).UnixMicro())},
		"end":     {fmt.Sprint(time.Now().Add(time.Minute).UnixMicro())},
	}
	u := j.QueryURL + "/api/traces?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaeger: query traces: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("jaeger: read traces: %w", err)
	}
	// An unknown service is a 404 in some versions: no traces yet.
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaeger: GET %s: %s: %s", u, resp.Status, body)
	}
	var r struct {
		Data   []Trace `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("jaeger: decode traces: %w", err)
	}
	if len(r.Errors) > 0 {
		return nil, fmt.Errorf("jaeger: query traces: %d: %s", r.Errors[0].Code, r.Errors[0].Msg)
	}
	for i := range r.Data {
		r.Data[i].normalize()
	}
	return r.Data, nil
}

// normalize pads trace IDs: Jaeger prints them without leading zeros.
func (t *Trace) normalize() {
	t.TraceID = padID(t.TraceID, 32)
	for i := range t.Spans {
		s := &t.Spans[i]
		s.TraceID = padID(s.TraceID, 32)
		s.SpanID = padID(s.SpanID, 16)
		for k := range s.References {
			s.References[k].TraceID = padID(s.References[k].TraceID, 32)
			s.References[k].SpanID = padID(s.References[k].SpanID, 16)
		}
	}
}

func padID(id string, n int) string {
	id = strings.ToLower(id)
	if len(id) >= n {
		return id
	}
	return strings.Repeat("0", n-len(id)) + id
}

// WaitForSpans polls Traces until done returns true, and returns the
// traces it accepted. Without a deadline on ctx it gives up after 30 s.
func (j *Jaeger) WaitForSpans(ctx context.Context, service string, done func([]Trace) bool) ([]Trace, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var (
		traces []Trace
		err    error
	)
	for {
		traces, err = j.Traces(ctx, service)
		if err == nil && done(traces) {
			return traces, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("%d traces, condition not met", len(traces))
			}
			return traces, fmt.Errorf("jaeger: wait for spans of %s: %w (last: %w)", service, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
