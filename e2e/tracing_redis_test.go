package e2e

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/weirgw/weir/internal/testredis"
)

// TestTracingSlowRedisSpan: a rate_limit decision or a cache lookup whose
// Redis calls take a millisecond or more is a client span of its own
// under the traced request's server span (db.system.name redis; who
// decided and whether it granted; whether the cache found the answer),
// with an error status when Redis failed and on_store_failure decided
// instead; a fast decision adds no span.
func TestTracingSlowRedisSpan(t *testing.T) {
	recv := startOTLPReceiver(t)
	up, _ := tracedUpstream(t)
	rs := testredis.Start(t)
	// Redis's replies (and the commands) are each delayed 15 ms.
	slow := startSlowProxy(t, rs.Addr, 15*time.Millisecond, 15*time.Millisecond)
	cfg := `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
redis: {addrs: ["REDIS"]}
tracing: {otlp: {endpoint: "RECV"}, sample: 0}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: patient
    paths: ["/patient"]
    service: a
    plugins: [{name: rate_limit, config: {rate: 1000, per: 1s, policy: redis, timeout: 500ms}}]
  - name: cached
    paths: ["/cached"]
    service: a
    plugins: [{name: cache, config: {store: redis, redis_timeout: 500ms}}]
  - name: hasty
    paths: ["/hasty"]
    service: a
    plugins: [{name: rate_limit, config: {rate: 1000, per: 1s, policy: redis, timeout: 5ms, on_store_failure: local}}]
`
	slowW := startWeir(t, strings.NewReplacer("REDIS", slow.Addr, "RECV", recv.URL, "UP", up).Replace(cfg))
	fastW := startWeir(t, strings.NewReplacer("REDIS", rs.Addr, "RECV", recv.URL, "UP", up).Replace(cfg))

	send := func(w *weir, path, tid string) {
		t.Helper()
		c := newClient(w.Addr)
		if code, body, _ := get(t, c, path, map[string]string{"Traceparent": "00-" + tid + "-00f067aa0ba902b7-01"}); code != 200 {
			t.Fatalf("%s: %d %q", path, code, body)
		}
	}
	// Warm the connection to Redis (its first dial is not the decision's
	// cost to show), then the measured request.
	send(slowW, "/patient", "11111111111111111111111111111111")
	send(fastW, "/patient", "22222222222222222222222222222222")
	recv.trace(t, "11111111111111111111111111111111", 0)
	recv.trace(t, "22222222222222222222222222222222", 0)

	const slowTid, hastyTid, fastTid = "8bf92f3577b34da6a3ce929d0e0e4736", "9bf92f3577b34da6a3ce929d0e0e4736", "abf92f3577b34da6a3ce929d0e0e4736"
	const cacheTid = "dbf92f3577b34da6a3ce929d0e0e4736"
	send(slowW, "/patient", slowTid)
	send(slowW, "/cached", cacheTid)
	send(slowW, "/hasty", hastyTid)
	send(fastW, "/patient", fastTid)

	redisSpan := func(tid string, name ...string) (*tracepb.Span, *tracepb.Span) {
		t.Helper()
		want := "redis rate_limit"
		if len(name) > 0 {
			want = name[0]
		}
		spans := recv.trace(t, tid, 3)
		srv := spanByKind(spans, tracepb.Span_SPAN_KIND_SERVER)[0]
		for _, s := range spans {
			if s.Name == want {
				return s, srv
			}
		}
		t.Fatalf("trace %s has no redis span:%s", tid, describeSpans(spans))
		return nil, nil
	}
	s, srv := redisSpan(slowTid)
	if s.Kind != tracepb.Span_SPAN_KIND_CLIENT || hex.EncodeToString(s.ParentSpanId) != hex.EncodeToString(srv.SpanId) {
		t.Errorf("redis span kind %v parent %x, want a client span under the server span %x", s.Kind, s.ParentSpanId, srv.SpanId)
	}
	if d := time.Duration(s.EndTimeUnixNano - s.StartTimeUnixNano); d < 15*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("redis span lasts %v, want the ~30 ms Redis took", d)
	}
	if s.StartTimeUnixNano < srv.StartTimeUnixNano || s.EndTimeUnixNano > srv.EndTimeUnixNano {
		t.Errorf("redis span [%d, %d] is not inside the server span [%d, %d]", s.StartTimeUnixNano, s.EndTimeUnixNano, srv.StartTimeUnixNano, srv.EndTimeUnixNano)
	}
	wantStrAttr(t, s, "db.system.name", "redis")
	wantStrAttr(t, s, "weir.rate_limit.store", "redis")
	if v := spanAttr(s, "weir.rate_limit.granted"); !v.GetBoolValue() {
		t.Errorf("weir.rate_limit.granted = %v, want true", v)
	}
	if s.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("a decision Redis made has error status %v", s.Status)
	}

	cs, csrv := redisSpan(cacheTid, "redis cache")
	if hex.EncodeToString(cs.ParentSpanId) != hex.EncodeToString(csrv.SpanId) {
		t.Errorf("cache redis span's parent %x, want the server span %x", cs.ParentSpanId, csrv.SpanId)
	}
	wantStrAttr(t, cs, "db.system.name", "redis")
	if v := spanAttr(cs, "weir.cache.found"); v == nil || v.GetBoolValue() {
		t.Errorf("weir.cache.found = %v, want false (a first request)", v)
	}

	h, _ := redisSpan(hastyTid)
	wantStrAttr(t, h, "weir.rate_limit.store", "fallback")
	if h.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || h.Status.GetMessage() == "" {
		t.Errorf("a decision Redis failed to make: status %v, want an error with the reason", h.Status)
	}

	// A fast decision records nothing. A loaded machine may stretch one
	// loopback round trip past the threshold now and then, so of three
	// fast decisions at least one must be without a span.
	clean := 0
	for i, tid := range []string{fastTid, "bbf92f3577b34da6a3ce929d0e0e4736", "cbf92f3577b34da6a3ce929d0e0e4736"} {
		if i > 0 {
			send(fastW, "/patient", tid)
		}
		has := false
		for _, s := range recv.trace(t, tid, 0) {
			has = has || s.Name == "redis rate_limit"
		}
		if !has {
			clean++
		}
	}
	if clean == 0 {
		t.Error("every fast Redis decision (direct loopback Redis) recorded a redis span")
	}
}
