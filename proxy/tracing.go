package proxy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/weirgw/weir/pool"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/proxy/transport"
	"github.com/weirgw/weir/sdk"
)

// Traces (README.md, "Traces"). The sampling decision is Weir's own and
// comes first: a request whose traceparent arrives sampled is recorded,
// one that arrives unsampled is not, and one without a valid traceparent
// starts a trace recorded with probability tracing.sample. Only a
// recorded request reaches the OpenTelemetry SDK (whose sampler is then
// AlwaysSample): the others cost an atomic load and a random number, no
// allocation, no context, no span object.
//
// A recorded request gets a server span (handle, from the request's start
// to its answer) and a client span per upstream try, the server span's
// child; the upstream's traceparent names the client span as its parent.
// Ended spans go to spanQueue, a bounded queue exported in batches over
// OTLP/HTTP by one goroutine: a full queue drops and counts, it never
// waits, so a slow or dead collector never slows a request.

var (
	spansExported      = metrics.NewCounter(`weir_tracing_spans_exported_total`)
	spansDroppedFull   = metrics.NewCounter(`weir_tracing_spans_dropped_total{reason="queue_full"}`)
	spansDroppedExport = metrics.NewCounter(`weir_tracing_spans_dropped_total{reason="export_failed"}`)
)

// Export batching: a batch goes when it holds spanBatch spans or
// spanFlushEvery after its first span, whichever comes first; at most
// spanQueueLen ended spans wait. Variables for tests.
var (
	spanQueueLen   = 8192
	spanBatch      = 512
	spanFlushEvery = time.Second
)

// tracing is one tracing section, built into an exporter and a provider;
// a reload that changes the section builds a new one.
type tracing struct {
	key        string // the section, marshalled: a reload with the same one keeps this
	tp         *sdktrace.TracerProvider
	t          trace.Tracer
	always     bool   // sample is 1
	threshold  uint64 // a new trace is recorded when rand.Uint64() < threshold
	respHeader bool
}

func tracingKey(tc *config.Tracing) string {
	if tc == nil {
		return ""
	}
	b, _ := json.Marshal(tc)
	return string(b)
}

func newTracing(tc *config.Tracing, s *Server) (*tracing, error) {
	to := tc.OTLP.Timeout.D()
	if to <= 0 {
		to = config.DefaultTracingTimeout
	}
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(tc.OTLP.Endpoint),
		otlptracehttp.WithTimeout(to),
		// Retries with exponential backoff on 429, 502-504 and
		// connection failures, within the one export's timeout.
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true,
			InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: to}),
	}
	if len(tc.OTLP.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(tc.OTLP.Headers))
	}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, err
	}
	sample := config.DefaultTracingSample
	if tc.Sample != nil {
		sample = *tc.Sample
	}
	name := tc.ServiceName
	if name == "" {
		name = config.DefaultTracingService
	}
	q := newSpanQueue(exp, s)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.AlwaysSample()), // decided before (traceStart)
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
		sdktrace.WithSpanProcessor(q),
	)
	t := &tracing{
		key:        tracingKey(tc),
		tp:         tp,
		t:          tp.Tracer("github.com/weirgw/weir"),
		always:     sample >= 1,
		respHeader: tc.ResponseHeader,
	}
	if sample > 0 && sample < 1 {
		t.threshold = uint64(sample * math.MaxUint64)
	}
	return t, nil
}

// applyTracing publishes cfg's tracing section: unchanged, the running
// exporter stays; changed or removed, the old one is flushed and shut
// down in the background once the requests that hold its spans are done.
func (s *Server) applyTracing(cfg *config.Config) {
	old := s.tracer.Load()
	k := tracingKey(cfg.Tracing)
	if old != nil && old.key == k || old == nil && cfg.Tracing == nil {
		return
	}
	var t *tracing
	if cfg.Tracing != nil {
		var err error
		if t, err = newTracing(cfg.Tracing, s); err != nil {
			s.log.Error("tracing: the OTLP exporter could not be set up; spans are not recorded", "error", err)
		}
	}
	s.tracer.Store(t)
	if old != nil {
		go func() {
			// Requests in flight may still end spans on the old provider.
			time.Sleep(2 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = old.tp.Shutdown(ctx)
		}()
	}
}

// closeTracing flushes the spans still queued, within ctx.
func (s *Server) closeTracing(ctx context.Context) {
	if t := s.tracer.Swap(nil); t != nil {
		_ = t.tp.Shutdown(ctx)
	}
}

// traceStart decides whether the request is recorded and, if it is,
// starts its server span. Requests not recorded take no allocation.
func (st *reqState) traceStart(t *tracing, c *sdk.Ctx) {
	ctx := context.Background()
	if tp := st.scan.trace; validTraceparent(tp) {
		if hexNibble(tp[54])&1 == 0 {
			return // the caller decided against recording: honoured
		}
		var tid trace.TraceID
		var sid trace.SpanID
		_, _ = hex.Decode(tid[:], tp[3:35])
		_, _ = hex.Decode(sid[:], tp[36:52])
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
	} else if !t.always && rand.Uint64() >= t.threshold {
		st.unsampled = true // the traceparent started for the upstream says so
		return
	}
	st.tr = t
	st.traceCtx, st.span = t.t.Start(ctx, "HTTP", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(c.Start))
	c.SetTraceContext(st.traceCtx) // for plugins' spans (sdk.Ctx.StartSpan)
}

// traceEnd completes the server span with what the request came to.
func (st *reqState) traceEnd(c *sdk.Ctx) {
	rc := c.RequestCtx()
	sp := st.span
	status := rc.Response.StatusCode()
	method := string(rc.Request.Header.Method())
	name := method
	if c.Route != "" {
		name += " " + c.Route
	}
	sp.SetName(name)
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("url.path", string(c.Path())),
		attribute.String("server.address", string(c.Host())),
		attribute.String("client.address", c.ClientIP().String()),
		attribute.Int("http.response.status_code", status),
		attribute.String("weir.request_id", string(c.RequestID())),
	}
	if c.Route != "" {
		attrs = append(attrs, attribute.String("weir.route", c.Route), attribute.String("weir.service", c.Service))
	}
	if cons := c.Consumer(); cons != nil {
		attrs = append(attrs, attribute.String("weir.consumer", cons.Name))
	}
	if cs := rc.Response.Header.Peek("X-Cache-Status"); len(cs) > 0 {
		attrs = append(attrs, attribute.String("weir.cache", string(cs)))
	}
	sp.SetAttributes(attrs...)
	if status >= 500 && !st.spanFailed {
		sp.SetStatus(codes.Error, "HTTP "+strconv.Itoa(status))
	}
	if st.tr.respHeader {
		st.tp = sdk.AppendTraceparent(st.tp[:0], sp.SpanContext())
		rc.Response.Header.SetCanonical(hdrTraceparent, st.tp)
	}
	sp.End()
	st.tr, st.span, st.traceCtx, st.spanFailed = nil, nil, nil, false
}

// traceFail marks the server span failed with the gateway's reason.
func (st *reqState) traceFail(msg string) {
	if st.span != nil {
		st.span.SetStatus(codes.Error, msg)
		st.spanFailed = true
	}
}

// startTry starts the client span of one upstream try and makes its
// context the upstream's traceparent.
func (st *reqState) startTry(h *fasthttp.RequestHeader, m *pool.Member, attempt int, prev error) trace.Span {
	attrs := []attribute.KeyValue{
		attribute.String("url.full", m.URL()),
		attribute.String("server.address", m.Host()),
		attribute.Int("weir.attempt", attempt+1),
	}
	if prev != nil {
		attrs = append(attrs, attribute.String("weir.retry_reason", retryReason(prev)))
	}
	_, cs := st.tr.t.Start(st.traceCtx, "upstream", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrs...))
	st.tp = sdk.AppendTraceparent(st.tp[:0], cs.SpanContext())
	h.SetCanonical(hdrTraceparent, st.tp)
	return cs
}

// endTry ends a try's client span with its outcome.
func endTry(cs trace.Span, err error, status int) {
	if err != nil {
		cs.RecordError(err)
		cs.SetStatus(codes.Error, retryReason(err))
	} else {
		cs.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			cs.SetStatus(codes.Error, "HTTP "+strconv.Itoa(status))
		}
	}
	cs.End()
}

// retryReason names why a try failed, as the next try's
// weir.retry_reason says.
func retryReason(err error) string {
	var dialErr *transport.DialError
	switch {
	case errors.As(err, &dialErr):
		return "connect_failed"
	case errors.Is(err, transport.ErrPoolTimeout):
		return "pool_timeout"
	case transport.IsTimeout(err):
		return "timeout"
	}
	return "upstream_failed"
}

func hexNibble(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// spanQueue is the span processor: ended spans wait in a bounded queue
// for the one goroutine that exports them in batches.
type spanQueue struct {
	exp   sdktrace.SpanExporter
	log   func(msg string, args ...any)
	q     chan sdktrace.ReadOnlySpan
	flush chan chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	warn  time.Time // the last export failure logged
}

func newSpanQueue(exp sdktrace.SpanExporter, s *Server) *spanQueue {
	p := &spanQueue{
		exp:   exp,
		log:   s.log.Warn,
		q:     make(chan sdktrace.ReadOnlySpan, spanQueueLen),
		flush: make(chan chan struct{}),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go p.run()
	return p
}

func (p *spanQueue) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s, or drops and counts it when the queue is full: it never
// waits.
func (p *spanQueue) OnEnd(s sdktrace.ReadOnlySpan) {
	select {
	case p.q <- s:
	default:
		spansDroppedFull.Inc()
	}
}

func (p *spanQueue) run() {
	defer close(p.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, spanBatch)
	timer := time.NewTimer(spanFlushEvery)
	timer.Stop()
	drain := func() {
		for {
			select {
			case s := <-p.q:
				batch = append(batch, s)
				if len(batch) >= spanBatch {
					batch = p.export(batch)
				}
			default:
				batch = p.export(batch)
				return
			}
		}
	}
	for {
		select {
		case s := <-p.q:
			if len(batch) == 0 {
				timer.Reset(spanFlushEvery)
			}
			batch = append(batch, s)
			if len(batch) >= spanBatch {
				timer.Stop()
				batch = p.export(batch)
			}
		case <-timer.C:
			batch = p.export(batch)
		case ack := <-p.flush:
			timer.Stop()
			drain()
			close(ack)
		case <-p.stop:
			timer.Stop()
			drain()
			return
		}
	}
}

// export sends b (the exporter retries with backoff within its timeout);
// a batch that still fails is dropped and counted.
func (p *spanQueue) export(b []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	if len(b) == 0 {
		return b
	}
	if err := p.exp.ExportSpans(context.Background(), b); err != nil {
		spansDroppedExport.Add(len(b))
		if now := time.Now(); now.Sub(p.warn) > 10*time.Second {
			p.warn = now
			p.log("tracing: span export failed; spans dropped", "spans", len(b), "error", err)
		}
	} else {
		spansExported.Add(len(b))
	}
	clear(b)
	return b[:0]
}

func (p *spanQueue) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case p.flush <- ack:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *spanQueue) Shutdown(ctx context.Context) error {
	p.once.Do(func() { close(p.stop) })
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.exp.Shutdown(ctx)
}
