package proxy

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestPassiveHealthShiftsTraffic: a target that keeps failing is taken out
// of rotation; the healthy one carries the traffic.
func TestPassiveHealthShiftsTraffic(t *testing.T) {
	var badHits atomic.Int64
	bad := startUpstream(t, func(rc *fasthttp.RequestCtx) { badHits.Add(1); rc.SetStatusCode(503) })
	good := startEcho(t, "good")
	g := startGateway(t, strings.NewReplacer("BAD", bad.URL, "GOOD", good.URL).Replace(`
listen: "127.0.0.1:0"
services:
  - name: s
    targets: [{url: "BAD"}, {url: "GOOD"}]
    retries: 0
    health_check: {passive: {unhealthy_after: 2, healthy_after_ms: 60000}}
routes: [{name: r, paths: ["/"], service: s}]
`))
	for i := 0; i < 10; i++ {
		g.get("/x")
	}
	hitsAfterWarmup := badHits.Load()
	ok := 0
	for i := 0; i < 20; i++ {
		if resp, _ := g.get("/x"); resp.StatusCode() == 200 {
			ok++
		}
	}
	if ok != 20 || badHits.Load() != hitsAfterWarmup {
		t.Fatalf("after the bad target was marked down: %d/20 ok, bad target hit %d more times", ok, badHits.Load()-hitsAfterWarmup)
	}
	if hitsAfterWarmup > 3 {
		t.Fatalf("bad target served %d requests before being marked down (unhealthy_after 2)", hitsAfterWarmup)
	}
}

// TestCircuitBreakerOpens: once the failure ratio trips the breaker, the
// gateway answers 503 without sending to the target.
func TestCircuitBreakerOpens(t *testing.T) {
	var hits atomic.Int64
	bad := startUpstream(t, func(rc *fasthttp.RequestCtx) { hits.Add(1); rc.SetStatusCode(502) })
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
services:
  - name: s
    targets: [{url: "BAD"}]
    retries: 0
    circuit_breaker: {failure_ratio: 0.5, min_requests: 5, window: 10s, open_for: 30s}
routes: [{name: r, paths: ["/"], service: s}]
`, "BAD", bad.URL))
	for i := 0; i < 5; i++ {
		if resp, _ := g.get("/x"); resp.StatusCode() != 502 {
			t.Fatalf("request %d: %d, want the upstream's 502", i, resp.StatusCode())
		}
	}
	before := hits.Load()
	for i := 0; i < 10; i++ {
		resp, body := g.get("/x")
		decodeError(t, resp, body, 503)
	}
	if hits.Load() != before {
		t.Fatalf("open circuit still sent %d requests upstream", hits.Load()-before)
	}
}

// TestConsistentHashOnHeader: the same X-User-Id always lands on the same
// target; different ids spread over both.
func TestConsistentHashOnHeader(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	g := startGateway(t, strings.NewReplacer("A", a.URL, "B", b.URL).Replace(`
listen: "127.0.0.1:0"
services:
  - name: s
    targets: [{url: "A"}, {url: "B"}]
    balancer: consistent_hash
    hash_on: header:X-User-Id
routes: [{name: r, paths: ["/"], service: s}]
`))
	seen := map[string]bool{}
	for u := 0; u < 40; u++ {
		id := string(rune('a'+u%26)) + string(rune('0'+u/26))
		first := ""
		for i := 0; i < 3; i++ {
			resp, _ := g.do("GET", "/x", func(r *fasthttp.Request) { r.Header.Set("X-User-Id", id) })
			got := string(resp.Header.Peek("X-Echo-Server"))
			if first == "" {
				first = got
			} else if got != first {
				t.Fatalf("user %s moved from %s to %s", id, first, got)
			}
		}
		seen[first] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("40 users all hashed to one target: %v", seen)
	}
}
