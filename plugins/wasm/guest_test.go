package wasm

import (
	"errors"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// The example guest (examples/headers, standard Go toolchain, hand-written
// ABI) through OnRequest, OnResponse and OnLog with real sdk.Ctx values.

func TestGuestAddsHeaders(t *testing.T) {
	lb := &logBuf{}
	f := newFilter(t, headersWasm, map[string]any{"config": headersConfig}, lb)
	rc, c := request("GET", "/users/a%20b/../7?x=1&y=2", "")
	defer sdk.ReleaseCtx(c)

	if st := roundTrip(t, f, rc, c); st != sdk.Continue {
		t.Fatalf("status = %v, want Continue", st)
	}
	req := &rc.Request
	if got := string(req.Header.Peek("X-Wasm-Added")); got != "yes" {
		t.Errorf("X-Wasm-Added = %q, want yes", got)
	}
	// request.path: the normalized path re-encoded, and the raw query.
	if got := string(req.Header.Peek("X-Wasm-Path")); got != "/users/7?x=1&y=2" {
		t.Errorf("X-Wasm-Path = %q, want /users/7?x=1&y=2", got)
	}
	resp := &rc.Response
	if got := string(resp.Header.Peek("X-Wasm-Filter")); got != "headers" {
		t.Errorf("X-Wasm-Filter = %q, want headers", got)
	}
	if resp.StatusCode() != 200 || string(resp.Body()) != "hello" {
		t.Errorf("response = %d %q, want the upstream's 200 hello", resp.StatusCode(), resp.Body())
	}
	if c.Value(f) != (*reqState)(nil) {
		t.Errorf("request state still on the ctx after OnLog: %v", c.Value(f))
	}
	// The guest logged through proxy_log at debug, from proxy_on_log.
	if !strings.Contains(lb.String(), "headers: done with /users/7?x=1&y=2") {
		t.Errorf("guest log line missing:\n%s", lb)
	}
}

func TestGuestBlocks(t *testing.T) {
	f := newFilter(t, headersWasm, map[string]any{"config": headersConfig}, nil)
	rc, c := request("POST", "/admin", "payload", "X-Block: 1")
	defer sdk.ReleaseCtx(c)

	if st := roundTrip(t, f, rc, c); st != sdk.Stop {
		t.Fatalf("status = %v, want Stop", st)
	}
	resp := &rc.Response
	if resp.StatusCode() != 403 {
		t.Errorf("status = %d, want 403", resp.StatusCode())
	}
	if got := string(resp.Body()); got != "blocked by the headers example\n" {
		t.Errorf("body = %q", got)
	}
	if got := string(resp.Header.Peek("X-Blocked-By")); got != "headers-example" {
		t.Errorf("X-Blocked-By = %q", got)
	}
	if got := string(resp.Header.ContentType()); got != "text/plain" {
		t.Errorf("Content-Type = %q, want text/plain", got)
	}
	// proxy_on_response_headers runs for the guest's own answer too.
	if got := string(resp.Header.Peek("X-Wasm-Filter")); got != "headers" {
		t.Errorf("X-Wasm-Filter = %q, want headers", got)
	}
	if got := rc.Request.Header.Peek("X-Wasm-Added"); got != nil {
		t.Errorf("a blocked request was still changed: X-Wasm-Added = %q", got)
	}
}

func TestGuestBlockValueMustBeOne(t *testing.T) {
	f := newFilter(t, headersWasm, map[string]any{"config": headersConfig}, nil)
	rc, c := request("GET", "/", "", "X-Block: 0")
	defer sdk.ReleaseCtx(c)
	if st := roundTrip(t, f, rc, c); st != sdk.Continue || rc.Response.StatusCode() != 200 {
		t.Fatalf("X-Block: 0 was blocked: %v %d", st, rc.Response.StatusCode())
	}
}

// TestGuestResponseBody: proxy_on_response_body appends through
// proxy_set_buffer_bytes to a buffered body.
func TestGuestResponseBody(t *testing.T) {
	conf := map[string]any{"response_body_suffix": " (via wasm)"}
	f := newFilter(t, headersWasm, map[string]any{"config": conf}, nil)
	rc, c := request("GET", "/", "")
	defer sdk.ReleaseCtx(c)
	roundTrip(t, f, rc, c)
	if got := string(rc.Response.Body()); got != "hello (via wasm)" {
		t.Errorf("body = %q, want %q", got, "hello (via wasm)")
	}
}

// TestGuestMetric: the guest's proxy_define_metric counter is exported.
func TestGuestMetric(t *testing.T) {
	f := newFilter(t, headersWasm, map[string]any{"config": headersConfig}, nil)
	ctr := metrics.GetOrCreateCounter(`weir_wasm_guest_headers_example_requests_total{route="r"}`)
	before := ctr.Get()
	for i := 0; i < 3; i++ {
		rc, c := request("GET", "/", "")
		roundTrip(t, f, rc, c)
		sdk.ReleaseCtx(c)
	}
	if got := ctr.Get() - before; got != 3 {
		t.Errorf("guest counter grew by %d, want 3", got)
	}
}

// TestGuestContextsInterleave: many requests keep contexts in one
// instance at the same time; each gets its own response phase.
func TestGuestContextsInterleave(t *testing.T) {
	f := newFilter(t, headersWasm, map[string]any{"config": headersConfig, "pool_size": 1}, nil)
	type pending struct {
		c    *sdk.Ctx
		path string
	}
	var ps []pending
	for i := 0; i < 5; i++ {
		path := "/p/" + string(rune('a'+i))
		rc, c := request("GET", path, "")
		if st, err := f.OnRequest(c); err != nil || st != sdk.Continue {
			t.Fatalf("OnRequest %d: %v %v", i, st, err)
		}
		upstream(rc, 200, "ok")
		ps = append(ps, pending{c, path})
	}
	for i := len(ps) - 1; i >= 0; i-- {
		p := ps[i]
		if err := f.OnResponse(p.c); err != nil {
			t.Fatalf("OnResponse %d: %v", i, err)
		}
		f.OnLog(p.c)
		if got := string(p.c.Request().Header.Peek("X-Wasm-Path")); got != p.path {
			t.Errorf("request %d: X-Wasm-Path = %q, want %q", i, got, p.path)
		}
		if got := string(p.c.Response().Header.Peek("X-Wasm-Filter")); got != "headers" {
			t.Errorf("request %d: X-Wasm-Filter = %q", i, got)
		}
		sdk.ReleaseCtx(p.c)
	}
	if n := instances(f); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
}

// TestGuestStartFillsPool: Start prepares every instance.
func TestGuestStartFillsPool(t *testing.T) {
	f := newFilter(t, headersWasm, map[string]any{"config": headersConfig, "pool_size": 3}, nil)
	if n := instances(f); n != 1 {
		t.Fatalf("after New: %d instances, want 1", n)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	if n := instances(f); n != 3 {
		t.Fatalf("after Start: %d instances, want 3", n)
	}
	f.Close()
	if n := instances(f); n != 0 {
		t.Fatalf("after Close: %d instances, want 0", n)
	}
	rc, c := request("GET", "/", "")
	defer sdk.ReleaseCtx(c)
	_ = rc
	if _, err := f.OnRequest(c); !errors.Is(err, errClosed) {
		t.Fatalf("OnRequest after Close: %v, want %v", err, errClosed)
	}
}

// TestStreamedResponseUntouched: a streamed response body is not read
// (that would consume it) nor handed to the guest. (A request body over
// the proxy's threshold is covered behind the real server, in
// TestGuestRequestBody.)
func TestStreamedResponseUntouched(t *testing.T) {
	f := newFilter(t, headersWasm, map[string]any{"config": map[string]any{"response_body_suffix": "!"}}, nil)
	rc, c := request("GET", "/download", "")
	defer sdk.ReleaseCtx(c)
	if st, err := f.OnRequest(c); err != nil || st != sdk.Continue {
		t.Fatalf("OnRequest: %v %v", st, err)
	}
	respBody := strings.NewReader("streamed response")
	rc.Response.SetBodyStream(respBody, -1)
	if err := f.OnResponse(c); err != nil {
		t.Fatal(err)
	}
	f.OnLog(c)
	if !rc.Response.IsBodyStream() || respBody.Len() != len("streamed response") {
		t.Errorf("the response stream was read (%d bytes left)", respBody.Len())
	}
}

// TestGuestRequestBody, behind the real server: the guest gets
// proxy_on_request_body with a body of up to 256 KiB, sent with
// Content-Length or chunked, reads it with proxy_get_buffer_bytes (a body
// rule answers 403) and edits it with proxy_set_buffer_bytes (the upstream
// gets it with the Content-Length to match). A larger body streams to the
// upstream without the guest seeing it.
func TestGuestRequestBody(t *testing.T) {
	f := newFilter(t, headersWasm, map[string]any{"config": map[string]any{"block_body": "<script>", "request_body_suffix": "+wasm"}}, nil)
	g := serve(t, f)
	big := strings.Repeat("b", 300<<10)
	for _, tc := range []struct {
		name     string
		send     plugintest.Send
		status   int
		upstream string // for 200
	}{
		{"content-length", plugintest.Send{Body: "name=ann"}, 200, "name=ann+wasm"},
		{"chunked", plugintest.Send{Body: "name=ann", Chunked: true}, 200, "name=ann+wasm"},
		{"blocked", plugintest.Send{Body: "name=<script>"}, 403, ""},
		{"blocked chunked", plugintest.Send{Body: "name=<script>", Chunked: true}, 403, ""},
		{"streamed", plugintest.Send{Body: big}, 200, big},
		{"streamed chunked", plugintest.Send{Body: big, Chunked: true}, 200, big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := g.Do(t, tc.send)
			if a.Status != tc.status {
				t.Fatalf("status %d %q, want %d", a.Status, a.Body, tc.status)
			}
			if tc.status != 200 {
				if a.Upstream != nil || a.Header.Get("X-Blocked-By") != "headers-example" {
					t.Fatalf("blocked request: upstream reached %v, X-Blocked-By %q", a.Upstream != nil, a.Header.Get("X-Blocked-By"))
				}
				return
			}
			if a.Upstream == nil || string(a.Upstream.Body) != tc.upstream {
				t.Fatalf("upstream got %v", a.Upstream)
			}
			if tc.upstream != big && a.Upstream.ContentLength != int64(len(tc.upstream)) {
				t.Fatalf("upstream got Content-Length %d for %d bytes", a.Upstream.ContentLength, len(tc.upstream))
			}
		})
	}
}
