package ratelimit

import (
	"strconv"
	"testing"

	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/plugins/internal/redisguard"
	"github.com/weirgw/weir/sdk"
)

// TestFallbackStartsFromRedisAndIsCharged: the local fallback starts from
// what Redis last said about the key (not from a full bucket), and what it
// admits is charged to Redis with the key's next decision there.
func TestFallbackStartsFromRedisAndIsCharged(t *testing.T) {
	srv := testredis.Start(t)
	cl := newClient(t, srv)
	f := mustNew(t, &sdk.Build{Route: "fb", Redis: cl},
		`{"rate":10,"per":"1m","burst":10,"key":"consumer","policy":"redis","on_store_failure":"local","nodes":2,"timeout":"1s"}`)
	r := newTestReq(reqSpec{consumer: "alice", route: "fb"})
	for i := range 4 {
		if res := r.do(f); res.status != sdk.Continue || res.headers[hdrRemaining] != strconv.Itoa(9-i) {
			t.Fatalf("redis request %d: %+v", i, res)
		}
	}
	// Redis has 6 of 10 left. The breaker opens: this node's share is 5
	// of a bucket 40% used, so 3 requests pass (not 5), and they are owed.
	open := func() {
		for range redisguard.FailThreshold {
			f.remote.guard.Breaker.Failure(f.now())
		}
	}
	open()
	got := 0
	for range 6 {
		if res := r.do(f); res.status == sdk.Continue {
			got++
		}
	}
	if got != 3 {
		t.Fatalf("fallback admitted %d, want 3 (the share of what Redis had left)", got)
	}
	// Redis back: the next decision pays the 3 first, leaving 3, then
	// takes one.
	f.remote.guard.Breaker.Success()
	if res := r.do(f); res.status != sdk.Continue || res.headers[hdrRemaining] != "2" {
		t.Fatalf("first request back on redis: %+v, want remaining 2", res)
	}
	// Paid once: the next one does not charge again.
	if res := r.do(f); res.status != sdk.Continue || res.headers[hdrRemaining] != "1" {
		t.Fatalf("second request back on redis: %+v, want remaining 1", res)
	}
}
