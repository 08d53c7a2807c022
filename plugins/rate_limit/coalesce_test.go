package ratelimit

import (
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/sdk"
)

// evalshaCalls is how many EVALSHA commands srv has run.
func evalshaCalls(t *testing.T, srv *testredis.Server) int {
	t.Helper()
	n, err := srv.Calls("evalsha")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCoalescedDecisionsExact: 64 concurrent requests for one key with 40
// tokens (no refill to speak of) share Redis calls, and still every
// request gets its own answer: exactly 40 admitted, their
// RateLimit-Remaining exactly 39, 38, ..., 0 once each (as one decision
// after the other would say), every 429 with Remaining 0 and a
// Retry-After of one token's time (1h); the decisions counter counts
// requests.
func TestCoalescedDecisionsExact(t *testing.T) {
	srv := testredis.Start(t)
	f := mustNew(t, &sdk.Build{Route: "coal", Redis: newClient(t, srv)},
		`{"rate":1,"per":"1h","burst":40,"key":"route","policy":"redis","timeout":"2s"}`)
	warm := newTestReq(reqSpec{route: "warm"})
	warm.do(f) // load the script, open the connection
	calls0 := evalshaCalls(t, srv)
	decisions := counterFrom(`weir_ratelimit_decisions_total{route="coal",store="redis"}`)
	coalesced := counterFrom(`weir_ratelimit_coalesced_total{route="coal"}`)

	const n = 64
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newTestReq(reqSpec{route: "coal"})
			<-start
			results[i] = r.do(f)
		}()
	}
	close(start)
	wg.Wait()
	calls := evalshaCalls(t, srv) - calls0

	var remaining []int
	refused := 0
	for _, res := range results {
		switch {
		case res.status == sdk.Continue:
			v, err := strconv.Atoi(res.headers[hdrRemaining])
			if err != nil || res.headers[hdrLimit] != "40" {
				t.Fatalf("admitted with headers %v", res.headers)
			}
			remaining = append(remaining, v)
		case res.code == 429:
			refused++
			ra, _ := strconv.Atoi(res.headers[hdrRetryAfter])
			if res.headers[hdrRemaining] != "0" || res.headers[hdrLimit] != "40" || ra < 3599 || ra > 3600 {
				t.Fatalf("429 with headers %v, want Remaining 0 and Retry-After 3600 (one token)", res.headers)
			}
		default:
			t.Fatalf("neither admitted nor 429: %+v", res)
		}
	}
	slices.Sort(remaining)
	want := make([]int, 40)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(remaining, want) || refused != n-40 {
		t.Fatalf("admitted with Remaining %v (%d refused), want 0..39 once each and %d refused", remaining, refused, n-40)
	}
	if d := decisions(); d != n {
		t.Errorf("redis decisions counted %v, want %d (one per request)", d, n)
	}
	t.Logf("%d requests, %d EVALSHA calls, %v coalesced", n, calls, coalesced())
	if calls >= n || uint64(calls)+coalesced() != n {
		t.Fatalf("%d EVALSHA calls and %v coalesced decisions for %d requests: want fewer calls, and calls + coalesced = requests", calls, coalesced(), n)
	}
}
