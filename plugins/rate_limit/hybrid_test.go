package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/sdk"
)

func TestHybridHotKeyMostlyLocal(t *testing.T) {
	srv := testredis.Start(t)
	f := mustNew(t, &sdk.Build{Route: "hy-hot", Redis: newClient(t, srv)},
		`{"rate":100000,"per":"1s","burst":100000,"key":"route","policy":"redis","timeout":"1s","hybrid":{"batch":10}}`)
	// Lease lifetimes run on the node's clock; a frozen one keeps a slow
	// test machine from expiring leases mid-test. Redis grants on its own.
	clk := newFakeClock()
	f.setClock(clk.UnixNano)
	r := newTestReq(reqSpec{route: "hy-hot"})
	redis := counterFrom(`weir_ratelimit_decisions_total{route="hy-hot",store="redis"}`)
	lease := counterFrom(`weir_ratelimit_decisions_total{route="hy-hot",store="lease"}`)
	for i := range 1000 {
		if res := r.do(f); res.status != sdk.Continue {
			t.Fatalf("request %d refused: %+v", i, res)
		}
	}
	key := []byte("r6:hy-hot")
	if w := f.lease.want(key); w != 10 {
		t.Fatalf("hot key asks for %d tokens, want the full batch 10", w)
	}
	// Ramp 1,2,4,8 then batches of 10: about 100 fetches for 1000 requests.
	if redis() > 110 || redis()+lease() != 1000 {
		t.Fatalf("%d decisions in redis and %d from leases for 1000 requests", redis(), lease())
	}
	t.Logf("hot key: %d of 1000 decisions touched redis", redis())
}

func TestHybridColdKeyDoesNotHoard(t *testing.T) {
	srv := testredis.Start(t)
	f := mustNew(t, &sdk.Build{Route: "hy-cold", Redis: newClient(t, srv)},
		`{"rate":1000,"per":"1s","key":"ip","policy":"redis","timeout":"1s","hybrid":{"batch":10,"max_hold":"20ms"}}`)
	clk := newFakeClock()
	f.setClock(clk.UnixNano)
	r := newTestReq(reqSpec{route: "hy-cold"})
	key := []byte("i:192.0.2.1")
	for i := range 5 {
		if res := r.do(f); res.status != sdk.Continue {
			t.Fatalf("request %d refused", i)
		}
		if h := f.lease.held(key); h != 0 {
			t.Fatalf("a key seen once per lease holds %d tokens", h)
		}
		clk.Advance(30 * time.Millisecond)
	}
	// Now make it hot, then cold again: the ask ramps up, then halves.
	for range 20 {
		r.do(f)
	}
	hot := f.lease.want(key)
	if hot < 8 {
		t.Fatalf("ask after 20 quick requests = %d, want >= 8", hot)
	}
	clk.Advance(30 * time.Millisecond)
	r.do(f)
	if w := f.lease.want(key); w != hot/2 {
		t.Fatalf("ask after an unspent lease = %d, want %d", w, hot/2)
	}
}

func TestHybridRemembersRejection(t *testing.T) {
	srv := testredis.Start(t)
	f := mustNew(t, &sdk.Build{Route: "hy-rej", Redis: newClient(t, srv)},
		`{"rate":2,"per":"1h","burst":2,"key":"ip","policy":"redis","timeout":"1s","hybrid":{"batch":2}}`)
	r := newTestReq(reqSpec{route: "hy-rej"})
	r.do(f)
	r.do(f)
	redis := counterFrom(`weir_ratelimit_decisions_total{route="hy-rej",store="redis"}`)
	for range 10 {
		res := r.do(f)
		if res.code != 429 {
			t.Fatalf("over the limit: %+v", res)
		}
		if ra := res.headers[hdrRetryAfter]; ra != "1800" && ra != "1799" {
			t.Fatalf("Retry-After = %s, want about 1800", ra)
		}
	}
	if n := redis(); n != 1 {
		t.Fatalf("%d refusals went to redis, want only the first", n)
	}
}

// TestHybridWorstCaseOverAdmission builds the worst case of the formula in
// README.md: every node holds batch-1 tokens while the Redis bucket is
// full, and then a burst arrives. At most burst + nodes*(batch-1) (plus what
// refills while the burst runs) may be admitted, and exactly that is.
func TestHybridWorstCaseOverAdmission(t *testing.T) {
	const (
		burst = 20
		batch = 10
		nodes = 2
		T     = 10 * time.Millisecond // rate 20 per 200ms
	)
	srv := testredis.Start(t)
	cfg := fmt.Sprintf(`{"rate":20,"per":"200ms","burst":%d,"key":"route","policy":"redis","timeout":"1s",
		"hybrid":{"batch":%d,"max_hold":"10s"}}`, burst, batch)
	var fs []*filter
	for range nodes {
		fs = append(fs, mustNew(t, &sdk.Build{Route: "hy-worst", Redis: newClient(t, srv)}, cfg))
	}
	r := newTestReq(reqSpec{route: "hy-worst"})
	key := []byte("r8:hy-worst")
	// Each node ramps to full batches and stops right after a fetch, when
	// it holds batch-1.
	for i, f := range fs {
		deadline := time.Now().Add(5 * time.Second)
		for !(f.lease.want(key) == batch && f.lease.held(key) == batch-1) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d never held a full lease (want %d, held %d)", i, f.lease.want(key), f.lease.held(key))
			}
			if ok, _, _ := r.decideOnly(f); !ok {
				time.Sleep(time.Duration(burst)*T + 10*time.Millisecond) // let the bucket refill
			}
		}
	}
	time.Sleep(time.Duration(burst)*T + 50*time.Millisecond) // Redis's bucket is full again
	start := time.Now()
	admitted := 0
	for i := range 4 * (burst + nodes*batch) {
		if ok, _, _ := r.decideOnly(fs[i%nodes]); ok {
			admitted++
		}
	}
	elapsed := time.Since(start)
	bound := burst + nodes*(batch-1)
	refill := int(elapsed / T)
	t.Logf("worst case: admitted %d in %v; bound burst + nodes*(batch-1) = %d + %d*%d = %d (+%d refilled during the burst)",
		admitted, elapsed.Round(time.Millisecond), burst, nodes, batch-1, bound, refill)
	if admitted < bound || admitted > bound+refill+1 {
		t.Fatalf("admitted %d, want between %d and %d", admitted, bound, bound+refill+1)
	}
}
