package redisguard

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weirgw/weir/sdk"
)

// SlowSpanAfter: Redis time a request spent, through one plugin, of this
// much or more is recorded as a span of its own under the traced
// request's server span (SlowSpan), so that a slow request's trace shows
// where the time went. The usual sub-millisecond round trip records
// nothing: a span per Redis call would cost more than the call.
const SlowSpanAfter = time.Millisecond

// SlowSpan records spent, the Redis time a plugin's work for c took
// (what its Budget lost), as a client span named name that ends now;
// err, when Redis did not answer, is its error status. A no-op for a
// request that is not traced. Callers check spent >= SlowSpanAfter and
// c.TraceContext() != nil first, so that a fast call, or a slow one on a
// request not traced, pays nothing (not even building attrs).
func SlowSpan(c *sdk.Ctx, name string, spent time.Duration, err error, attrs ...attribute.KeyValue) {
	end := time.Now()
	_, span := c.StartSpan(context.Background(), name, trace.WithTimestamp(end.Add(-spent)))
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("db.system.name", "redis"))
	span.SetAttributes(attrs...)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End(trace.WithTimestamp(end))
}
