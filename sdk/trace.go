package sdk

import (
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel/trace"
)

// Traces for plugins that call out on a request's behalf (an
// authorization server, a key set). The proxy hands a recorded request's
// server span to its Ctx; a plugin wraps its call in StartSpan, which is
// a no-op, allocating nothing, for a request that is not recorded.

// SetTraceContext gives c the context holding the request's server span;
// the proxy calls it for a request it records.
func (c *Ctx) SetTraceContext(ctx context.Context) { c.traceCtx = ctx }

// TraceContext is the context SetTraceContext gave, nil for a request
// not recorded.
func (c *Ctx) TraceContext() context.Context { return c.traceCtx }

// noSpan is the no-op span StartSpan returns for a request not recorded.
var noSpan = trace.SpanFromContext(context.Background())

// StartSpan starts a client span named name, child of the request's
// server span, in a context derived from ctx (its deadline kept). For a
// request that is not recorded it returns ctx and a no-op span. Set
// attributes when span.IsRecording(), and End the span when the call is
// done. The returned context carries the span, so a call made with it
// can send TraceparentOf(ctx) on. opts are the OpenTelemetry start
// options (trace.WithTimestamp for a call timed before it was known to
// be worth a span).
func (c *Ctx) StartSpan(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if c.traceCtx == nil {
		return ctx, noSpan
	}
	parent := trace.SpanFromContext(c.traceCtx)
	return parent.TracerProvider().Tracer("github.com/weirgw/weir/sdk").Start(
		trace.ContextWithSpan(ctx, parent), name, append(opts, trace.WithSpanKind(trace.SpanKindClient))...)
}

// TraceparentOf is the W3C traceparent naming the span in ctx, or ""
// when ctx holds none.
func TraceparentOf(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return string(AppendTraceparent(nil, sc))
}

// AppendTraceparent appends the W3C traceparent (version 00) naming sc.
func AppendTraceparent(dst []byte, sc trace.SpanContext) []byte {
	tid, sid := sc.TraceID(), sc.SpanID()
	dst = append(dst, "00-"...)
	dst = hex.AppendEncode(dst, tid[:])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, sid[:])
	if sc.IsSampled() {
		return append(dst, "-01"...)
	}
	return append(dst, "-00"...)
}
