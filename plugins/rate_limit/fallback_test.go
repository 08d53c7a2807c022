package ratelimit

import (
	"strconv"
	"testing"
	"time"

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

// TestChargeAppliedOnce: a charge is a node's running total, so sending
// it again (its first answer timed out, but Redis may have applied it)
// does not charge twice; a larger total charges only the difference, and
// a new epoch (the node forgot the key) starts over.
func TestChargeAppliedOnce(t *testing.T) {
	srv := testredis.Start(t)
	f := mustNew(t, &sdk.Build{Route: "once", Redis: newClient(t, srv)},
		`{"rate":100,"per":"1h","key":"consumer","policy":"redis","on_store_failure":"local","timeout":"1s"}`)
	key := []byte("k")
	take := func(ch *charge) int64 {
		t.Helper()
		b := redisguard.NewBudget(time.Second)
		d, err := f.remote.store.take(f.remote.guard, key, 1, f.now(), &b, ch, nil, nil, nil)
		if err != nil || d.granted != 1 {
			t.Fatalf("take: %+v %v", d, err)
		}
		return d.remaining
	}
	for i, tc := range []struct {
		ch   *charge
		want int64
	}{
		{nil, 99},
		{&charge{node: "n1", epoch: 7, total: 5}, 93}, // 5 charged, 1 taken
		{&charge{node: "n1", epoch: 7, total: 5}, 92}, // the same total again: nothing more
		{&charge{node: "n1", epoch: 7, total: 8}, 88}, // 3 more
		{&charge{node: "n2", epoch: 7, total: 2}, 85}, // another node
		{&charge{node: "n1", epoch: 9, total: 1}, 83}, // a new epoch: from 0
		// Credits: tokens given back, once each, like charges.
		{&charge{node: "n1", epoch: 9, total: 1, credit: 3}, 85},   // 3 back, 1 taken
		{&charge{node: "n1", epoch: 9, total: 1, credit: 3}, 84},   // not again
		{&charge{node: "n1", epoch: 9, total: 2, credit: 4}, 83},   // 1 charged, 1 back, 1 taken
		{&charge{node: "n2", epoch: 7, total: 2, credit: 500}, 99}, // never past full
	} {
		if got := take(tc.ch); got != tc.want {
			t.Fatalf("step %d: remaining %d, want %d", i, got, tc.want)
		}
	}
}

// TestLateGrantIsGivenBack: a call that timed out but that Redis granted
// (its answer read late, see redisguard.Guard.DoLate) spent a token no
// request used; it is given back with the key's next Redis decision,
// once.
func TestLateGrantIsGivenBack(t *testing.T) {
	srv := testredis.Start(t)
	f := mustNew(t, &sdk.Build{Route: "late", Redis: newClient(t, srv)},
		`{"rate":10,"per":"1m","burst":10,"key":"consumer","policy":"redis","on_store_failure":"local","timeout":"1s"}`)
	r := newTestReq(reqSpec{consumer: "alice", route: "late"})
	if res := r.do(f); res.status != sdk.Continue || res.headers[hdrRemaining] != "9" {
		t.Fatalf("first request: %+v", res)
	}
	// A decision whose request stopped waiting: Redis granted it (8
	// left), the request never got the answer.
	key := []byte("alice")
	b := redisguard.NewBudget(time.Second)
	if d, err := f.remote.store.take(f.remote.guard, key, 1, f.now(), &b, nil, nil, nil, nil); err != nil || d.granted != 1 {
		t.Fatalf("take: %+v %v", d, err)
	}
	f.fb.late(key, 1, nil)
	// The next decision gives it back and takes one: 8 left, not 7.
	if res := r.do(f); res.status != sdk.Continue || res.headers[hdrRemaining] != "8" {
		t.Fatalf("after a late grant: %+v, want remaining 8", res)
	}
	if res := r.do(f); res.status != sdk.Continue || res.headers[hdrRemaining] != "7" {
		t.Fatalf("the credit was applied twice: %+v, want remaining 7", res)
	}
	// A late refusal gives nothing back.
	f.fb.late(key, 0, nil)
	if res := r.do(f); res.status != sdk.Continue || res.headers[hdrRemaining] != "6" {
		t.Fatalf("after a late refusal: %+v, want remaining 6", res)
	}
}
