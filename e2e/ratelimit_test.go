package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/testredis"
)

const rateCfg = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
redis: {addrs: ["REDIS"]}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: limited
    paths: ["/"]
    service: a
    plugins:
      - {name: rate_limit, config: {rate: 50, per: 1s, burst: 50, key: "header:X-Tenant", policy: redis, on_store_failure: local, nodes: 2, timeout: 200ms}}
`

// sendOpenLoop sends n requests at a constant rate, alternating between
// the clients, each at its scheduled time whatever the previous answers
// did (open loop). It returns the status of each and the send span.
func sendOpenLoop(t *testing.T, clients []*fasthttp.HostClient, tenant string, n int, every time.Duration) ([]int, time.Duration) {
	t.Helper()
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := time.Now()
	var last time.Time
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * every)
		time.Sleep(time.Until(at))
		last = time.Now()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			c := clients[i%len(clients)]
			req.SetRequestURI("http://" + c.Addr + "/static")
			req.Header.Set("X-Tenant", tenant)
			if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
				codes[i] = -1
				return
			}
			codes[i] = resp.StatusCode()
		}(i)
	}
	wg.Wait()
	return codes, last.Sub(start)
}

func count(codes []int) (ok, limited, other int) {
	for _, c := range codes {
		switch c {
		case 200:
			ok++
		case 429:
			limited++
		default:
			other++
		}
	}
	return
}

// TestRateLimitTwoNodes: two weir processes share one limit through a
// private redis-server; at twice the limit, what they admit together
// matches burst + rate*T; at 0.8x nothing is refused. Node b batches its
// Redis writes (redis.flush_delay), node a writes each command at once.
func TestRateLimitTwoNodes(t *testing.T) {
	rs := testredis.Start(t)
	up := startEcho(t, "e1")
	cfg := strings.NewReplacer("UP", up, "REDIS", rs.Addr).Replace(rateCfg)
	cfgB := strings.Replace(cfg, `redis: {addrs: ["`+rs.Addr+`"]}`, `redis: {addrs: ["`+rs.Addr+`"], flush_delay: 50us}`, 1)
	if cfgB == cfg {
		t.Fatal("flush_delay not set in node b's config")
	}
	a, b := startWeir(t, cfg), startWeir(t, cfgB)
	clients := []*fasthttp.HostClient{newClient(a.Addr), newClient(b.Addr)}

	// 2x: 100 req/s for 3 s against 50/s with a burst of 50.
	codes, span := sendOpenLoop(t, clients, "t-over", 300, 10*time.Millisecond)
	ok, limited, other := count(codes)
	expected := 50 + 50*span.Seconds()
	acc := float64(ok) / expected
	t.Logf("2x the limit over %.2fs on 2 nodes: admitted %d, expected %.1f (burst + rate*T): accuracy %.2f%%; 429: %d",
		span.Seconds(), ok, expected, 100*acc, limited)
	if other != 0 {
		t.Fatalf("%d answers were neither 200 nor 429", other)
	}
	if acc < 0.97 || acc > 1.03 {
		t.Fatalf("admitted %d, expected about %.1f", ok, expected)
	}
	// 0.8x: 40 req/s for 2 s: nothing refused.
	codes, _ = sendOpenLoop(t, clients, "t-under", 80, 25*time.Millisecond)
	ok, limited, other = count(codes)
	t.Logf("0.8x the limit: %d admitted, %d false rejects", ok, limited)
	if limited != 0 || other != 0 {
		t.Fatalf("at 0.8x: %d refused, %d errors", limited, other)
	}
	// Allowed answers carry the RateLimit headers.
	_, _, h := get(t, clients[0], "/static", map[string]string{"X-Tenant": "t-headers"})
	if len(h.Peek("RateLimit-Limit")) == 0 || len(h.Peek("RateLimit-Remaining")) == 0 || len(h.Peek("RateLimit-Reset")) == 0 {
		t.Fatalf("RateLimit headers missing: %s", h.Header())
	}
}

// TestRateLimitRedisDies: killing Redis mid-run causes no 5xx; each node
// falls back to its share and returns to Redis once it is back.
func TestRateLimitRedisDies(t *testing.T) {
	rs := testredis.Start(t)
	up := startEcho(t, "e1")
	cfg := strings.NewReplacer("UP", up, "REDIS", rs.Addr).Replace(rateCfg)
	a, b := startWeir(t, cfg), startWeir(t, cfg)
	clients := []*fasthttp.HostClient{newClient(a.Addr), newClient(b.Addr)}

	codes, _ := sendOpenLoop(t, clients, "t-kill", 50, 10*time.Millisecond)
	if _, _, other := count(codes); other != 0 {
		t.Fatalf("before the kill: %d errors", other)
	}
	rs.Stop()
	codes, _ = sendOpenLoop(t, clients, "t-kill", 150, 10*time.Millisecond)
	ok, limited, other := count(codes)
	t.Logf("Redis down: %d admitted, %d limited, %d other", ok, limited, other)
	if other != 0 {
		t.Fatalf("%d non-200/429 answers while Redis was down", other)
	}
	if ok == 0 || limited == 0 {
		t.Fatalf("local fallback should admit this node's share and refuse the rest: %d/%d", ok, limited)
	}
	rs.Restart()
	before := a.metric(`weir_ratelimit_decisions_total{route="limited",store="redis"}`)
	deadline := time.Now().Add(3 * time.Second)
	for {
		codes, _ = sendOpenLoop(t, clients, "t-back", 10, 20*time.Millisecond)
		if _, _, other := count(codes); other != 0 {
			t.Fatalf("after the restart: %d errors", other)
		}
		if a.metric(`weir_ratelimit_decisions_total{route="limited",store="redis"}`) > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node a did not return to Redis within 3s of its restart")
		}
	}
}

// TestRedisRateLimitAllocsPerRequest: a request through a policy redis
// route allocates in the gateway at most a few objects more than one
// through a plain route (rueidis's reply array): the Redis call reuses
// its worker goroutine, context, timers, state and key. Counted with the
// Go runtime's own malloc counter from /metrics.
func TestRedisRateLimitAllocsPerRequest(t *testing.T) {
	rs := testredis.Start(t)
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "REDIS", rs.Addr).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
redis: {addrs: ["REDIS"]}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: rl
    paths: ["/rl"]
    service: a
    plugins:
      - {name: rate_limit, config: {rate: 1000000, per: 1s, burst: 1000000, key: route, policy: redis}}
  - name: plain
    paths: ["/"]
    service: a
`))
	c := newClient(w.Addr)
	mallocs := func() float64 { return gatewayMallocs(t, w) }
	const n = 4000
	perRequest := func(path string) float64 {
		run := func(k int) {
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range k / 4 {
						if code, _, _ := get(t, c, path, nil); code != 200 {
							t.Errorf("%s: %d", path, code)
							return
						}
					}
				}()
			}
			wg.Wait()
		}
		run(400) // warm the pools, connections and the script
		before := mallocs()
		run(n)
		return (mallocs() - before) / n
	}
	plain, rl := perRequest("/plain"), perRequest("/rl")
	t.Logf("allocations per request: plain %.2f, rate_limit redis %.2f", plain, rl)
	if rl-plain > 3 {
		t.Fatalf("a policy redis decision costs %.2f allocations per request in the gateway, want at most 3", rl-plain)
	}
}

// gatewayMallocs is the gateway's allocation count so far, from the Go
// runtime's own counter in /metrics.
func gatewayMallocs(t *testing.T, w *weir) float64 {
	t.Helper()
	s, _, _ := scrape(t, w)
	v, ok := s["go_memstats_mallocs_total"]
	if !ok {
		t.Fatal("go_memstats_mallocs_total not in /metrics")
	}
	return v
}
