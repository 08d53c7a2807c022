package proxy

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// tracingAllocConfig is allocConfig with tracing on and no new trace
// sampled: the exporter points at a closed port and is never used.
const tracingAllocConfig = allocConfig + `
tracing: {otlp: {endpoint: "http://127.0.0.1:1/v1/traces"}, sample: 0}
`

// TestZeroAllocTracingUnsampled: with tracing configured, a request that
// is not recorded (no traceparent at sample 0, or an unsampled incoming
// one) allocates nothing, as without tracing.
func TestZeroAllocTracingUnsampled(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); `make unit` runs this test")
	}
	up := staticUpstream(t)
	srv, err := New(mustParse(t, sub(tracingAllocConfig, "UP", up.URL)), "test.yaml", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctxTimeout(2e9))
	if srv.tracer.Load() == nil {
		t.Fatal("tracing is not on")
	}
	h := srv.Handler()
	rc := newDirectCtx(t)
	for name, tp := range map[string]string{
		"no traceparent":        "",
		"unsampled traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
	} {
		t.Run(name, func(t *testing.T) {
			run := func() {
				prepare(rc, "/users/42")
				if tp != "" {
					rc.Request.Header.Set("Traceparent", tp)
				}
				h(rc)
			}
			for i := 0; i < 50; i++ {
				run()
			}
			if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
				t.Fatalf("%.1f allocations per request, want 0", allocs)
			}
			if rc.Response.StatusCode() != 200 {
				t.Fatalf("status %d", rc.Response.StatusCode())
			}
		})
	}
}

// blockingExporter holds every export until released.
type blockingExporter struct {
	release chan struct{}
	mu      sync.Mutex
	got     int
}

func (e *blockingExporter) ExportSpans(ctx context.Context, s []sdktrace.ReadOnlySpan) error {
	<-e.release
	e.mu.Lock()
	e.got += len(s)
	e.mu.Unlock()
	return nil
}
func (e *blockingExporter) Shutdown(context.Context) error { return nil }

// TestSpanQueueDropsWhenFull: with the exporter stuck, OnEnd neither
// blocks nor grows the queue past its bound; what does not fit is counted
// as dropped, and what was queued is exported once the exporter returns.
func TestSpanQueueDropsWhenFull(t *testing.T) {
	defer func(n, b int, e time.Duration) { spanQueueLen, spanBatch, spanFlushEvery = n, b, e }(spanQueueLen, spanBatch, spanFlushEvery)
	spanQueueLen, spanBatch, spanFlushEvery = 4, 2, time.Hour
	exp := &blockingExporter{release: make(chan struct{})}
	q := newSpanQueue(exp, &Server{log: quietLog()})
	spans := tracetest.SpanStubs{{Name: "s"}}.Snapshots()[0]
	before := spansDroppedFull.Get()
	start := time.Now()
	for i := 0; i < 20; i++ {
		q.OnEnd(spans)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("OnEnd waited %v for a stuck exporter", d)
	}
	// The worker took one batch of 2 (held in ExportSpans) and the queue
	// holds 4: at least 14 of 20 were dropped.
	if dropped := spansDroppedFull.Get() - before; dropped < 14 || dropped > 16 {
		t.Errorf("dropped %d of 20, want 14..16", dropped)
	}
	close(exp.release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	exp.mu.Lock()
	defer exp.mu.Unlock()
	if exp.got+int(spansDroppedFull.Get()-before) != 20 {
		t.Errorf("exported %d + dropped %d != 20", exp.got, spansDroppedFull.Get()-before)
	}
}
