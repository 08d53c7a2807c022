package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestConnQueueDefaultWait: more busy clients than upstream connections
// (the shape of 10,000 keep-alive clients in front of the default 1,024
// connections per target) queue for a connection with the default
// max_conn_wait instead of getting 503: wait ≈ requests ahead ÷ rate,
// here ~3 s for the last of 40 requests over 2 connections to an
// upstream that takes 150 ms. Before: max_conn_wait defaulted to 1 s and
// the last ~25 requests got 503 "upstream connection limit reached".
func TestConnQueueDefaultWait(t *testing.T) {
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		time.Sleep(150 * time.Millisecond)
		rc.SetBodyString("ok")
	})
	w := startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: s, max_conns_per_target: 2, targets: [{url: "http://%s"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, up))
	const clients = 40
	codes := proxyGetAtOnce(t, w.Addr, clients, 20*time.Second)
	bad := 0
	for _, c := range codes {
		if c != 200 {
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d queued requests not answered 200 (statuses %v)", bad, clients, codes)
	}
}

// TestConnQueueNoGarbage: a request that waits for an upstream connection
// allocates nothing, so 10,000 busy connections queued behind
// max_conns_per_target leave no garbage to fill the heap up to the GC's
// goal (twice the live heap: RSS grows by what the queue throws away).
// 48 keep-alive clients in a closed loop over 2 upstream connections, so
// nearly every request waits; measured as heap allocations per request
// (runtime.MemStats.Mallocs, from the admin pprof endpoint) once pools
// are warm. Before: a timer and its channel per wait, ~3 allocations.
func TestConnQueueNoGarbage(t *testing.T) {
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		time.Sleep(2 * time.Millisecond)
		rc.SetBodyString("ok")
	})
	w := startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", pprof: true}
services: [{name: s, max_conns_per_target: 2, targets: [{url: "http://%s"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, up))
	const clients, each = 48, 30
	conns := openConns(t, w.Addr, clients, "")
	readers := make([]*bufio.Reader, clients)
	for i, c := range conns {
		readers[i] = bufio.NewReader(c)
	}
	round := func() {
		var wg sync.WaitGroup
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := conns[i]
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				for j := 0; j < each; j++ {
					if _, err := io.WriteString(c, "GET /q HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
						t.Error(err)
						return
					}
					resp, err := http.ReadResponse(readers[i], nil)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					if resp.StatusCode != 200 {
						t.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	round() // warm: request state, waiters and buffers pooled
	round()
	m0 := mallocs(t, w)
	own := mallocs(t, w) - m0 // the measurement's own
	m0 += own
	round()
	m1 := mallocs(t, w) - own
	per := float64(m1-m0) / (clients * each)
	t.Logf("%d queued requests: %d heap allocations (the measurement's own %d taken off), %.2f per request", clients*each, m1-m0, own, per)
	if per > 0.5 {
		t.Fatalf("%.2f heap allocations per queued request, want none (at most 0.5: the measurement's own varies by a few hundred)", per)
	}
}

// mallocs is runtime.MemStats.Mallocs of a weir with admin pprof on.
func mallocs(t *testing.T, w *weir) int64 {
	t.Helper()
	resp, err := http.Get("http://" + w.Admin + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 4 && f[1] == "Mallocs" {
			n, _ := strconv.ParseInt(f[3], 10, 64)
			return n
		}
	}
	t.Fatalf("no Mallocs in the heap profile (%v)", sc.Err())
	return 0
}

// TestConnQueueTimeoutIsNotTheTargets: a request that waited out
// max_conn_wait for one of a target's busy connections gets 503 "upstream
// connection limit reached", but the target was never asked: passive
// health (unhealthy after 2 failures) and the circuit breaker must not
// count it, or a burst the gateway cannot queue takes a healthy target
// out. Before, each such 503 counted as the target's failure: the next
// request found no healthy target.
func TestConnQueueTimeoutIsNotTheTargets(t *testing.T) {
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		time.Sleep(400 * time.Millisecond)
		rc.SetBodyString("ok")
	})
	w := startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: s
    max_conns_per_target: 1
    max_conn_wait: 50ms
    retries: 0
    targets: [{url: "http://%s"}]
    health_check: {passive: {unhealthy_after: 2, healthy_after_ms: 60000}}
    circuit_breaker: {failure_ratio: 0.5, min_requests: 4, window: 10s, open_for: 60s}
routes: [{name: r, paths: ["/"], service: s}]
`, up))
	const clients = 8
	codes := proxyGetAtOnce(t, w.Addr, clients, 5*time.Second)
	full := 0
	for _, c := range codes {
		if c == 503 {
			full++
		}
	}
	if full < 2 {
		t.Fatalf("want at least 2 of %d requests turned away by the connection limit, got statuses %v", clients, codes)
	}
	for i := 0; i < 3; i++ {
		if code, body := proxyGet(t, w.Addr, 5*time.Second); code != 200 {
			t.Fatalf("after %d requests turned away by max_conn_wait (statuses %v), request %d got %d %s: the target was blamed for the gateway's queue",
				full, codes, i, code, body)
		}
	}
}

// proxyGetAtOnce makes n proxyGets at once and returns their statuses.
func proxyGetAtOnce(t *testing.T, addr string, n int, d time.Duration) []int {
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = proxyGet(t, addr, d)
		}()
	}
	wg.Wait()
	return codes
}
