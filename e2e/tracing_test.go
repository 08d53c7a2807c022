package e2e

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP traces endpoint: it decodes every export
// with the OTLP protobuf types and keeps the spans.
type otlpReceiver struct {
	URL     string
	mu      sync.Mutex
	spans   []*tracepb.Span
	service []string // service.name of each export's resource
	ctype   []string
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	addr := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var m coltracepb.ExportTraceServiceRequest
		if req.URL.Path != "/v1/traces" || proto.Unmarshal(b, &m) != nil {
			http.Error(w, "bad export", 400)
			return
		}
		r.mu.Lock()
		r.ctype = append(r.ctype, req.Header.Get("Content-Type"))
		for _, rs := range m.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					r.service = append(r.service, a.Value.GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	r.URL = "http://" + addr + "/v1/traces"
	return r
}

// trace waits until the trace with id tid has its server span (ended
// last, so its client spans were queued before it) and returns its
// spans, which must be n.
func (r *otlpReceiver) trace(t *testing.T, tid string, n int) []*tracepb.Span {
	t.Helper()
	var got []*tracepb.Span
	ok := waitUntil(10*time.Second, 20*time.Millisecond, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		got = got[:0]
		done := false
		for _, s := range r.spans {
			if hex.EncodeToString(s.TraceId) == tid {
				got = append(got, s)
				done = done || s.Kind == tracepb.Span_SPAN_KIND_SERVER
			}
		}
		return done
	})
	if !ok || n > 0 && len(got) != n {
		t.Fatalf("trace %s: got %d spans, want %d: %v", tid, len(got), n, describeSpans(got))
	}
	return got
}

func (r *otlpReceiver) all() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

func describeSpans(ss []*tracepb.Span) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "\n  %s kind=%v id=%x parent=%x status=%v attrs=%v", s.Name, s.Kind, s.SpanId, s.ParentSpanId, s.Status, s.Attributes)
	}
	return b.String()
}

func spanAttr(s *tracepb.Span, k string) *commonpb.AnyValue {
	for _, a := range s.Attributes {
		if a.Key == k {
			return a.Value
		}
	}
	return nil
}

func wantStrAttr(t *testing.T, s *tracepb.Span, k, want string) {
	t.Helper()
	if v := spanAttr(s, k); v.GetStringValue() != want {
		t.Errorf("span %q: %s = %v, want %q", s.Name, k, v, want)
	}
}

func wantIntAttr(t *testing.T, s *tracepb.Span, k string, want int64) {
	t.Helper()
	if v := spanAttr(s, k); v == nil || v.GetIntValue() != want {
		t.Errorf("span %q: %s = %v, want %d", s.Name, k, v, want)
	}
}

// tracedUpstream answers 200 "ok" and keeps the traceparent of each
// request.
func tracedUpstream(t *testing.T) (string, func() []string) {
	return tracedServer(t, "text/plain", "ok")
}

// tracedServer answers 200 with body and keeps the traceparent of each
// request.
func tracedServer(t *testing.T, ctype, body string) (string, func() []string) {
	var mu sync.Mutex
	var seen []string
	addr := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.Header().Set("Content-Type", ctype)
		_, _ = io.WriteString(w, body)
	}))
	return addr, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func spanByKind(ss []*tracepb.Span, k tracepb.Span_SpanKind) []*tracepb.Span {
	var out []*tracepb.Span
	for _, s := range ss {
		if s.Kind == k {
			out = append(out, s)
		}
	}
	return out
}

// A sampled incoming traceparent is recorded: a server span whose parent
// is the caller's span, and a client span per upstream try (a refused
// connection, then the retry), children of the server span; the upstream
// gets a traceparent naming the last client span, the client one naming
// the server span. An unsampled incoming traceparent is not recorded.
func TestTracingSpansAndParents(t *testing.T) {
	recv := startOTLPReceiver(t)
	up, seen := tracedUpstream(t)
	dead := freeAddr(t)
	w := startWeir(t, strings.NewReplacer("RECV", recv.URL, "DEAD", dead, "GOOD", up).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
tracing:
  otlp: {endpoint: "RECV", timeout: 1s, headers: {X-Api-Key: k1}}
  sample: 0
  service_name: edge
  response_header: true
services:
  - {name: a, targets: [{url: "http://DEAD"}, {url: "http://GOOD"}], retries: 1}
  - {name: down, targets: [{url: "http://DEAD"}], retries: 0}
routes:
  - {name: main, paths: ["/"], service: a}
  - {name: broken, paths: ["/broken"], service: down}
`))
	c := newClient(w.Addr)
	const tid, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	code, _, h := get(t, c, "/api", map[string]string{"Traceparent": "00-" + tid + "-" + caller + "-01"})
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	spans := recv.trace(t, tid, 3)
	srv := spanByKind(spans, tracepb.Span_SPAN_KIND_SERVER)
	cli := spanByKind(spans, tracepb.Span_SPAN_KIND_CLIENT)
	if len(srv) != 1 || len(cli) != 2 {
		t.Fatalf("want 1 server and 2 client spans:%s", describeSpans(spans))
	}
	s := srv[0]
	if hex.EncodeToString(s.ParentSpanId) != caller {
		t.Errorf("server span parent %x, want the caller's %s", s.ParentSpanId, caller)
	}
	if s.Name != "GET main" {
		t.Errorf("server span name %q", s.Name)
	}
	wantStrAttr(t, s, "weir.route", "main")
	wantStrAttr(t, s, "weir.service", "a")
	wantStrAttr(t, s, "http.request.method", "GET")
	wantStrAttr(t, s, "url.path", "/api")
	wantIntAttr(t, s, "http.response.status_code", 200)
	if s.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("server span of a 200 is an error: %v", s.Status)
	}
	if got, want := h.Peek("Traceparent"), "00-"+tid+"-"+hex.EncodeToString(s.SpanId)+"-01"; string(got) != want {
		t.Errorf("response traceparent %q, want %q (the server span)", got, want)
	}
	var first, retry *tracepb.Span
	for _, cs := range cli {
		if hex.EncodeToString(cs.ParentSpanId) != hex.EncodeToString(s.SpanId) {
			t.Errorf("client span parent %x, want the server span %x", cs.ParentSpanId, s.SpanId)
		}
		switch spanAttr(cs, "weir.attempt").GetIntValue() {
		case 1:
			first = cs
		case 2:
			retry = cs
		}
	}
	if first == nil || retry == nil {
		t.Fatalf("want attempts 1 and 2:%s", describeSpans(cli))
	}
	wantStrAttr(t, first, "url.full", "http://"+dead)
	if first.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("the refused try's span is not an error: %v", first.Status)
	}
	wantStrAttr(t, retry, "url.full", "http://"+up)
	wantStrAttr(t, retry, "weir.retry_reason", "connect_failed")
	wantIntAttr(t, retry, "http.response.status_code", 200)
	tps := seen()
	if want := "00-" + tid + "-" + hex.EncodeToString(retry.SpanId) + "-01"; len(tps) != 1 || tps[0] != want {
		t.Errorf("upstream got traceparent %q, want %q (the retry's client span)", tps, want)
	}
	recv.mu.Lock()
	if recv.service[0] != "edge" || recv.ctype[0] != "application/x-protobuf" {
		t.Errorf("export: service.name %q, content type %q", recv.service[0], recv.ctype[0])
	}
	recv.mu.Unlock()

	// A failed request: the server span is an error with the reason.
	const tid2 = "5bf92f3577b34da6a3ce929d0e0e4736"
	if code, _, _ := get(t, c, "/broken", map[string]string{"Traceparent": "00-" + tid2 + "-" + caller + "-01"}); code != 502 {
		t.Fatalf("broken: status %d", code)
	}
	spans = recv.trace(t, tid2, 2)
	s = spanByKind(spans, tracepb.Span_SPAN_KIND_SERVER)[0]
	wantIntAttr(t, s, "http.response.status_code", 502)
	if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || s.Status.Message != "upstream failed" {
		t.Errorf("502 server span status %v", s.Status)
	}

	// An unsampled incoming traceparent travels on untouched and is not
	// recorded; neither are new traces at sample 0 (checked after a
	// recorded request that follows them, so no sleep is needed).
	const tid3 = "6bf92f3577b34da6a3ce929d0e0e4736"
	unsampled := "00-" + tid3 + "-" + caller + "-00"
	get(t, c, "/x", map[string]string{"Traceparent": unsampled})
	get(t, c, "/y", nil)
	const tid4 = "7bf92f3577b34da6a3ce929d0e0e4736"
	get(t, c, "/z", map[string]string{"Traceparent": "00-" + tid4 + "-" + caller + "-01"})
	recv.trace(t, tid4, 0)
	for _, s := range recv.all() {
		if id := hex.EncodeToString(s.TraceId); id != tid && id != tid2 && id != tid4 {
			t.Errorf("a request not sampled was recorded:%s", describeSpans([]*tracepb.Span{s}))
		}
	}
	tps = seen()
	if tps[1] != unsampled {
		t.Errorf("upstream got %q for an unsampled traceparent %q", tps[1], unsampled)
	}
	if !strings.HasSuffix(tps[2], "-00") || tps[2][3:35] == tid3 {
		t.Errorf("a new trace not picked at sample 0 went upstream as %q, want a new id, flags 00", tps[2])
	}

	// Reload: sample 1 records new traces.
	cfg, err := os.ReadFile(w.File)
	if err != nil {
		t.Fatal(err)
	}
	w.write(strings.Replace(string(cfg), "sample: 0\n", "sample: 1.0\n", 1))
	w.waitVersion(2)
	before := len(recv.all())
	_, _, h = get(t, c, "/new", nil)
	tp := string(h.Peek("Traceparent"))
	if len(tp) != 55 {
		t.Fatalf("after the reload to sample 1 the response has no traceparent (%q)", tp)
	}
	if got := recv.trace(t, tp[3:35], 0); len(recv.all()) != before+len(got) || len(got) < 2 {
		t.Errorf("reload: %d new spans, %d in the new trace", len(recv.all())-before, len(got))
	}
}

// With the collector down, requests are answered as before (the export
// runs off the request path) and the spans that could not be exported
// are counted as dropped.
func TestTracingCollectorDownDropsCounted(t *testing.T) {
	up, _ := tracedUpstream(t)
	dead := freeAddr(t)
	w := startWeir(t, strings.NewReplacer("DEAD", dead, "GOOD", up).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
tracing: {otlp: {endpoint: "http://DEAD/v1/traces", timeout: 300ms}, sample: 1}
services: [{name: a, targets: [{url: "http://GOOD"}]}]
routes: [{name: main, paths: ["/"], service: a}]
`))
	c := newClient(w.Addr)
	const n = 50
	start := time.Now()
	for i := 0; i < n; i++ {
		if code, body, _ := get(t, c, "/x", nil); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	// 50 requests on loopback take milliseconds; an export in their way
	// would take its 300ms timeout.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%d requests took %v with the collector down", n, d)
	}
	const dropped = `weir_tracing_spans_dropped_total{reason="export_failed"}`
	if !waitUntil(10*time.Second, 50*time.Millisecond, func() bool { return w.metric(dropped) >= 2*n }) {
		t.Fatalf("%s = %v, want >= %d (a server and a client span per request)", dropped, w.metric(dropped), 2*n)
	}
	if v := w.metric(`weir_tracing_spans_exported_total`); v != 0 {
		t.Errorf("exported %v spans to a closed port", v)
	}
}

// A plugin that calls out records its call as a span: the oauth2
// introspection call is a client span under the server span, and the
// authorization server gets a traceparent naming it.
func TestTracingIntrospectionSpan(t *testing.T) {
	recv := startOTLPReceiver(t)
	up, _ := tracedUpstream(t)
	as, asSeen := tracedServer(t, "application/json", `{"active": true, "sub": "alice"}`)
	w := startWeir(t, strings.NewReplacer("RECV", recv.URL, "AS", as, "GOOD", up).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
tracing: {otlp: {endpoint: "RECV"}, sample: 0}
services: [{name: a, targets: [{url: "http://GOOD"}]}]
routes:
  - name: main
    paths: ["/"]
    service: a
    plugins: [{name: oauth2_introspection, config: {introspection_url: "http://AS/introspect"}}]
`))
	c := newClient(w.Addr)
	const tid, caller = "8bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	if code, _, _ := get(t, c, "/x", map[string]string{"Traceparent": "00-" + tid + "-" + caller + "-01",
		"Authorization": "Bearer tok-1"}); code != 200 {
		t.Fatalf("status %d", code)
	}
	spans := recv.trace(t, tid, 3)
	srv := spanByKind(spans, tracepb.Span_SPAN_KIND_SERVER)[0]
	var in *tracepb.Span
	for _, s := range spans {
		if s.Name == "oauth2_introspection" {
			in = s
		}
	}
	if in == nil {
		t.Fatalf("no introspection span:%s", describeSpans(spans))
	}
	if in.Kind != tracepb.Span_SPAN_KIND_CLIENT || hex.EncodeToString(in.ParentSpanId) != hex.EncodeToString(srv.SpanId) {
		t.Errorf("introspection span kind %v parent %x, want a client span under the server span %x", in.Kind, in.ParentSpanId, srv.SpanId)
	}
	wantStrAttr(t, in, "url.full", "http://"+as+"/introspect")
	if v := spanAttr(in, "oauth2.token.active"); !v.GetBoolValue() {
		t.Errorf("oauth2.token.active = %v", v)
	}
	if want, asSaw := "00-"+tid+"-"+hex.EncodeToString(in.SpanId)+"-01", asSeen(); len(asSaw) != 1 || asSaw[0] != want {
		t.Errorf("the authorization server got traceparent %q, want %q", asSaw, want)
	}
}

// `weir validate` names each bad tracing key and says what to write.
func TestTracingValidateNamesKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(file, []byte(`
services: [{name: a, targets: [{url: "http://127.0.0.1:9"}]}]
routes: [{name: r, paths: ["/"], service: a}]
tracing: {otlp: {endpoint: "collector:4318"}, sample: 2}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := validateFile(t, file)
	if code == 0 {
		t.Fatalf("validate accepted a bad tracing section:\n%s", out)
	}
	for _, want := range []string{"tracing.otlp.endpoint", "is not an http(s) URL", "tracing.sample", "give a number from 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}

// An aggregate route's legs carry a traceparent naming the recorded
// request's server span, in the request's trace.
func TestTracingAggregateLegs(t *testing.T) {
	recv := startOTLPReceiver(t)
	up, legs := tracedServer(t, "application/json", `{"ok": true}`)
	w := startWeir(t, strings.NewReplacer("RECV", recv.URL, "UP", up).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
tracing: {otlp: {endpoint: "RECV"}, sample: 1}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: profile
    paths: ["/profile/{id}"]
    aggregate:
      backends:
        - {service: a, path: "/users/{id}", key: user}
        - {service: a, path: "/orders?user={id}", key: orders}
`))
	if code, body, _ := get(t, newClient(w.Addr), "/profile/7", nil); code != 200 {
		t.Fatalf("status %d %s", code, body)
	}
	var tid string
	if !waitUntil(10*time.Second, 20*time.Millisecond, func() bool {
		for _, s := range recv.all() {
			if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
				tid = hex.EncodeToString(s.TraceId)
				return true
			}
		}
		return false
	}) {
		t.Fatal("no server span")
	}
	srv := spanByKind(recv.trace(t, tid, 1), tracepb.Span_SPAN_KIND_SERVER)[0]
	want := "00-" + tid + "-" + hex.EncodeToString(srv.SpanId) + "-01"
	if seen := legs(); len(seen) != 2 || seen[0] != want || seen[1] != want {
		t.Errorf("legs got traceparents %q, want %q (the server span)", seen, want)
	}
}
