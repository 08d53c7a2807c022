package e2e

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/testredis"
)

// TestRedisRateLimitCoalescesOneKey: 32 connections hammer one key of a
// policy redis route (100 tokens, one more per hour) with 480 requests.
// The gateway sends Redis fewer EVALSHA calls than it decides requests
// (concurrent decisions for one key share a call), and still every
// request has its own exact answer: exactly 100 admitted, with
// RateLimit-Remaining 99..0 once each, 380 refused with 429, Remaining 0
// and Retry-After 3600, counted per request in the metrics.
//
// Before coalescing, every decision was its own EVALSHA: calls ==
// requests.
func TestRedisRateLimitCoalescesOneKey(t *testing.T) {
	rs := testredis.Start(t)
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "REDIS", rs.Addr).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
redis: {addrs: ["REDIS"]}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: hot
    paths: ["/hot"]
    service: a
    plugins:
      - {name: rate_limit, config: {rate: 1, per: 1h, burst: 100, key: route, policy: redis, timeout: 2s}}
  - name: warm
    paths: ["/warm"]
    service: a
    plugins:
      - {name: rate_limit, config: {rate: 1, per: 1h, burst: 100, key: route, policy: redis, timeout: 2s}}
`))
	const conns, perConn = 32, 15
	c := &fasthttp.HostClient{Addr: w.Addr, MaxConns: conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	// Load the script and open the gateway's Redis connection first.
	if code, _, _ := get(t, c, "/warm", nil); code != 200 {
		t.Fatalf("warm-up: %d", code)
	}
	calls0, err := rs.Calls("evalsha")
	if err != nil {
		t.Fatal(err)
	}

	type answer struct {
		code                 int
		remaining, retry, lm string
	}
	answers := make([]answer, conns*perConn)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + w.Addr + "/hot")
			<-start
			for i := range perConn {
				a := &answers[g*perConn+i]
				if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
					a.code = -1
					continue
				}
				a.code = resp.StatusCode()
				a.remaining = string(resp.Header.Peek("RateLimit-Remaining"))
				a.retry = string(resp.Header.Peek("Retry-After"))
				a.lm = string(resp.Header.Peek("RateLimit-Limit"))
			}
		}()
	}
	close(start)
	wg.Wait()
	calls1, err := rs.Calls("evalsha")
	if err != nil {
		t.Fatal(err)
	}
	calls := calls1 - calls0

	var remaining []int
	refused := 0
	for _, a := range answers {
		switch a.code {
		case 200:
			v, err := strconv.Atoi(a.remaining)
			if err != nil || a.lm != "100" || a.retry != "" {
				t.Fatalf("200 with Remaining %q Limit %q Retry-After %q", a.remaining, a.lm, a.retry)
			}
			remaining = append(remaining, v)
		case 429:
			refused++
			if a.remaining != "0" || a.lm != "100" || (a.retry != "3600" && a.retry != "3599") {
				t.Fatalf("429 with Remaining %q Limit %q Retry-After %q, want 0, 100, 3600", a.remaining, a.lm, a.retry)
			}
		default:
			t.Fatalf("answer %d", a.code)
		}
	}
	n := len(answers)
	slices.Sort(remaining)
	want := make([]int, 100)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(remaining, want) || refused != n-100 {
		t.Fatalf("%d admitted with Remaining %v, %d refused; want exactly 100 (99..0 once each) and %d refused", len(remaining), remaining, refused, n-100)
	}
	decided := w.metric(`weir_ratelimit_decisions_total{route="hot",store="redis"}`)
	rejected := w.metric(`weir_ratelimit_rejected_total{route="hot"}`)
	coalesced := w.metric(`weir_ratelimit_coalesced_total{route="hot"}`)
	t.Logf("%d requests on %d connections: %d EVALSHA calls (%.1f requests per call), %v decisions coalesced, %v rejected",
		n, conns, calls, float64(n)/float64(calls), coalesced, rejected)
	if decided != float64(n) || rejected != float64(n-100) {
		t.Fatalf("metrics: %v redis decisions and %v rejected, want %d and %d (per request)", decided, rejected, n, n-100)
	}
	if calls >= n*3/4 {
		t.Fatalf("%d EVALSHA calls for %d concurrent requests on one key: decisions were not coalesced", calls, n)
	}
	if coalesced+float64(calls) != float64(n) {
		t.Fatalf("%v coalesced decisions + %d calls != %d requests", coalesced, calls, n)
	}
}
