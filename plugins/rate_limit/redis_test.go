package ratelimit

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/plugins/internal/redisguard"
	"github.com/weirgw/weir/sdk"
	"go.uber.org/goleak"
)

func TestRedisBurstThen429(t *testing.T) {
	srv := testredis.Start(t)
	cl := newClient(t, srv)
	f := mustNew(t, &sdk.Build{Route: "redis-burst", Redis: cl},
		`{"rate":1,"per":"1m","burst":3,"key":"consumer","policy":"redis","timeout":"1s"}`)
	// Redis's clock decides, not ours: a node whose clock is far off must
	// not change anything.
	f.setClock(func() int64 { return 42 })
	r := newTestReq(reqSpec{consumer: "alice", route: "redis-burst"})
	decisions := counterFrom(`weir_ratelimit_decisions_total{route="redis-burst",store="redis"}`)
	for i := range 3 {
		res := r.do(f)
		if res.status != sdk.Continue || res.headers[hdrRemaining] != strconv.Itoa(2-i) || res.headers[hdrLimit] != "3" {
			t.Fatalf("request %d: %+v", i, res)
		}
	}
	res := r.do(f)
	if res.code != 429 || res.headers[hdrRetryAfter] == "" || res.headers[hdrRemaining] != "0" {
		t.Fatalf("4th: %+v", res)
	}
	if ra, _ := strconv.Atoi(res.headers[hdrRetryAfter]); ra < 59 || ra > 60 {
		t.Fatalf("Retry-After = %d, want about 60", ra)
	}
	// The state is one key, in the route's hash tag, with a TTL.
	key := "weir:rl:{redis-burst:" + f.cfg.fingerprint + ":c5:alice}"
	ttl, err := srv.Do("PTTL", key)
	if err != nil {
		t.Fatal(err)
	}
	if ms, _ := strconv.Atoi(strings.TrimPrefix(ttl, ":")); ms < 170_000 || ms > 181_000 {
		t.Fatalf("PTTL %s = %s, want about 180s (3 tokens of 60s)", key, ttl)
	}
	if n := decisions(); n != 4 {
		t.Errorf("redis decisions = %d, want 4", n)
	}
}

func TestRedisSeveralLimitsAtomic(t *testing.T) {
	srv := testredis.Start(t)
	cl := newClient(t, srv)
	f := mustNew(t, &sdk.Build{Route: "redis-multi", Redis: cl},
		`{"limits":[{"rate":2,"per":"1h","burst":2},{"rate":3,"per":"1h","burst":3}],"key":"ip","policy":"redis","timeout":"1s"}`)
	r := newTestReq(reqSpec{})
	if res := r.do(f); res.headers[hdrLimit] != "2" || res.headers[hdrRemaining] != "1" {
		t.Fatalf("first: %v", res.headers)
	}
	r.do(f)
	for range 5 {
		if res := r.do(f); res.code != 429 || res.headers[hdrLimit] != "2" {
			t.Fatalf("over the first limit: %d %v", res.code, res.headers)
		}
	}
	// Refusals took nothing from the second limit: its TAT is 2 tokens
	// ahead, not 7. Check via the stored state.
	v, err := cl.Do(context.Background(), cl.B().Get().Key(f.remote.store.redisKey([]byte("i:192.0.2.1"))).Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(v, ",")
	if len(parts) != 2 {
		t.Fatalf("state %q, want two TATs", v)
	}
	a, _ := strconv.ParseFloat(parts[0], 64)
	b, _ := strconv.ParseFloat(parts[1], 64)
	// Limit 0: T = 1800s, two tokens; limit 1: T = 1200s, two tokens.
	if d := (a - b) / 1e6; d < 1199 || d > 1201 {
		t.Fatalf("TAT difference %.1fs, want 1200s (2*1800 - 2*1200): state %q", d, v)
	}
}

// TestRedisConcurrentExact: many goroutines on two "nodes" (two clients)
// race for 100 tokens; exactly 100 win.
func TestRedisConcurrentExact(t *testing.T) {
	srv := testredis.Start(t)
	var nodes []*filter
	for range 2 {
		nodes = append(nodes, mustNew(t, &sdk.Build{Route: "redis-conc", Redis: newClient(t, srv)},
			`{"rate":1,"per":"1h","burst":100,"key":"route","policy":"redis","timeout":"2s"}`))
	}
	var admitted, other atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newTestReq(reqSpec{route: "redis-conc"})
			for range 20 {
				ok, code, err := r.decideOnly(nodes[g%2])
				switch {
				case ok:
					admitted.Add(1)
				case code != 429 || err != nil:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 100 || other.Load() != 0 {
		t.Fatalf("admitted %d (want exactly 100), non-429 refusals %d", admitted.Load(), other.Load())
	}
}

func TestRedisScriptReloadedAfterFlush(t *testing.T) {
	srv := testredis.Start(t)
	f := mustNew(t, &sdk.Build{Route: "redis-flush", Redis: newClient(t, srv)},
		`{"rate":10,"per":"1s","key":"ip","policy":"redis","timeout":"1s"}`)
	r := newTestReq(reqSpec{})
	if res := r.do(f); res.status != sdk.Continue {
		t.Fatal(res)
	}
	if _, err := srv.Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	storeErrors := counterFrom(`weir_ratelimit_store_errors_total{route="redis-flush"}`)
	if res := r.do(f); res.status != sdk.Continue || res.headers[hdrRemaining] != "8" {
		t.Fatalf("after SCRIPT FLUSH: %+v", res)
	}
	if storeErrors() != 0 {
		t.Fatalf("NOSCRIPT counted as a store error")
	}
}

func TestStoreFailurePolicies(t *testing.T) {
	for _, tc := range []struct {
		action      string
		wantHeaders bool
	}{
		{action: "allow", wantHeaders: false},
		{action: "deny", wantHeaders: true},
		{action: "local", wantHeaders: true},
	} {
		t.Run(tc.action, func(t *testing.T) {
			srv := testredis.Start(t)
			route := "fail-" + tc.action
			f := mustNew(t, &sdk.Build{Route: route, Redis: newClient(t, srv)},
				`{"rate":4,"per":"1h","burst":4,"key":"ip","policy":"redis","timeout":"1s","nodes":2,"on_store_failure":"`+tc.action+`"}`)
			r := newTestReq(reqSpec{route: route})
			fallback := counterFrom(`weir_ratelimit_decisions_total{route="` + route + `",store="fallback"}`)
			storeErrors := counterFrom(`weir_ratelimit_store_errors_total{route="` + route + `"}`)
			if res := r.do(f); res.code != 200 {
				t.Fatal(res)
			}
			srv.Stop()
			codes := map[int]int{}
			for range 10 {
				res := r.do(f)
				if res.err != nil || res.code >= 500 {
					t.Fatalf("a 5xx or error while redis is down: %+v", res)
				}
				codes[res.code]++
				if _, ok := res.headers[hdrLimit]; ok != tc.wantHeaders {
					t.Fatalf("headers present = %v, want %v: %v", ok, tc.wantHeaders, res.headers)
				}
			}
			switch tc.action {
			case "allow":
				if codes[200] != 10 {
					t.Fatalf("allow: %v", codes)
				}
			case "deny":
				if codes[429] != 10 {
					t.Fatalf("deny: %v", codes)
				}
			case "local":
				// This node's share of burst 4 over 2 nodes is 2, and
				// it starts as used as Redis last said the bucket was:
				// a quarter, so 1.5 tokens, of which 1 whole.
				if codes[200] != 1 || codes[429] != 9 {
					t.Fatalf("local share: %v, want 1 admitted and 9 refused", codes)
				}
			}
			fb, errs := fallback(), storeErrors()
			if fb != 10 || errs != redisguard.FailThreshold {
				t.Fatalf("fallback decisions %d (want 10), store errors %d (want %d: then the breaker opens)", fb, errs, redisguard.FailThreshold)
			}
			if !f.remote.guard.Breaker.Open() {
				t.Fatal("breaker is not open after repeated failures")
			}
			// Redis returns: within the breaker's open time plus a probe,
			// decisions go back to it.
			srv.Restart()
			deadline := time.Now().Add(time.Second)
			for {
				r.do(f)
				if !f.remote.guard.Breaker.Open() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("still not back on redis a second after it returned")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestLearnNodes(t *testing.T) {
	srv := testredis.Start(t)
	var fs []*filter
	for range 2 {
		f := mustNew(t, &sdk.Build{Route: "learn", Redis: newClient(t, srv)},
			`{"rate":10,"per":"1s","key":"ip","policy":"redis"}`)
		f.heartbeatEvery = 20 * time.Millisecond
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	deadline := time.Now().Add(2 * time.Second)
	for fs[0].nodes.Load() != 2 || fs[1].nodes.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("learned %d and %d nodes, want 2", fs[0].nodes.Load(), fs[1].nodes.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, f := range fs {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Same client, same node: a second instance in one process does not
	// count twice.
	if a, b := nodeID(fs[0].client()), nodeID(fs[0].client()); a != b {
		t.Fatalf("node id unstable: %s %s", a, b)
	}
	if nodeID(fs[0].client()) == nodeID(fs[1].client()) {
		t.Fatal("two clients share a node id")
	}
}

// TestStartCloseNoLeak: Close stops every goroutine Start started (the
// sweeper and the node heartbeat), as a config reload requires.
func TestStartCloseNoLeak(t *testing.T) {
	srv := testredis.Start(t)
	cl := newClient(t, srv)
	local := mustNew(t, nil, `{"rate":1,"per":"1s"}`)
	remote := mustNew(t, &sdk.Build{Route: "leak", Redis: cl},
		`{"rate":10,"per":"1s","policy":"redis","hybrid":{"batch":2}}`)
	// The rueidis client belongs to the test, not the plugin: its pipes
	// start their reader/writer goroutines lazily, so they are not all
	// there when IgnoreCurrent looks.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*pipe)._background"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*pipe).startBackground"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*pipe)._backgroundWrite"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*pipe)._backgroundRead"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*pipe)._background.func1"))
	for _, f := range []*filter{local, remote} {
		if err := f.Start(); err != nil {
			t.Fatal(err)
		}
	}
	newTestReq(reqSpec{}).do(remote)
	for _, f := range []*filter{local, remote} {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil { // idempotent
			t.Fatal(err)
		}
	}
}

// TestRedisDecisionAllocs: a decision Redis answers in time allocates only
// rueidis's reply array (its reader makes one per reply): the guard's
// call, its context and timers, the key and the call's state are reused.
func TestRedisDecisionAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); run without -race")
	}
	srv := testredis.Start(t)
	f := mustNew(t, &sdk.Build{Route: "allocs", Redis: newClient(t, srv)},
		`{`+hugeLimit+`,"key":"consumer","policy":"redis","timeout":"1s"}`)
	r := newTestReq(reqSpec{consumer: "alice"})
	for range 100 { // connect, load the script, set rueidis's pipes up
		r.decideOnly(f)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if ok, code, _ := r.decideOnly(f); !ok {
			t.Fatalf("refused with %d", code)
		}
	})
	if allocs > 1 {
		t.Fatalf("%.1f allocs per Redis decision, want at most 1 (rueidis's reply)", allocs)
	}
}
