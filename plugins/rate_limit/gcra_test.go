package ratelimit

import (
	"testing"
	"time"
)

func lim(rate float64, per time.Duration, burst int64) limit {
	T := int64(float64(per) / rate)
	return limit{rate: rate, per: per, burst: burst, T: T, tau: burst * T}
}

func TestGCRABurstThenRate(t *testing.T) {
	lims := []limit{lim(10, time.Second, 5)} // one token per 100ms, 5 saved
	tats := make([]int64, 1)
	now := int64(time.Hour)
	for i := range 5 {
		d := gcraTake(tats, now, lims, 1)
		if d.granted != 1 || d.remaining != int64(4-i) || d.limit != 5 {
			t.Fatalf("request %d: %+v", i, d)
		}
		if want := int64(i+1) * int64(100*time.Millisecond); d.reset != want {
			t.Fatalf("request %d: reset %d, want %d", i, d.reset, want)
		}
	}
	d := gcraTake(tats, now, lims, 1)
	if d.granted != 0 || d.retry != int64(100*time.Millisecond) || d.reset != int64(500*time.Millisecond) {
		t.Fatalf("6th request: %+v", d)
	}
	// 99ms later still nothing; at 100ms exactly one token.
	if d := gcraTake(tats, now+int64(99*time.Millisecond), lims, 1); d.granted != 0 || d.retry != int64(time.Millisecond) {
		t.Fatalf("at 99ms: %+v", d)
	}
	if d := gcraTake(tats, now+int64(100*time.Millisecond), lims, 1); d.granted != 1 || d.remaining != 0 {
		t.Fatalf("at 100ms: %+v", d)
	}
	// After a full refill the bucket is full again, not fuller.
	later := now + int64(10*time.Second)
	n := 0
	for gcraTake(tats, later, lims, 1).granted == 1 {
		n++
	}
	if n != 5 {
		t.Fatalf("after idling, admitted %d at once, want burst 5", n)
	}
}

func TestGCRAAllLimitsMustAdmit(t *testing.T) {
	// 2 per second (burst 2) and 3 per minute (burst 3).
	lims := []limit{lim(2, time.Second, 2), lim(3, time.Minute, 3)}
	tats := make([]int64, 2)
	now := int64(time.Hour)
	for i := range 2 {
		if d := gcraTake(tats, now, lims, 1); d.granted != 1 {
			t.Fatalf("request %d rejected: %+v", i, d)
		}
	}
	d := gcraTake(tats, now, lims, 1)
	if d.granted != 0 || d.idx != 0 {
		t.Fatalf("3rd request at once must be refused by the per-second limit: %+v", d)
	}
	// A rejection takes nothing from the other limit: one second later the
	// minute limit still has exactly one token.
	now += int64(time.Second)
	if d := gcraTake(tats, now, lims, 1); d.granted != 1 || d.idx != 1 || d.remaining != 0 || d.limit != 3 {
		t.Fatalf("3rd request after 1s: %+v (the per-minute limit is now the most restrictive)", d)
	}
	now += int64(time.Second)
	d = gcraTake(tats, now, lims, 1)
	if d.granted != 0 || d.idx != 1 || d.retry != int64(20*time.Second)-int64(2*time.Second) {
		t.Fatalf("4th request: %+v, want refused by the minute limit with retry 18s", d)
	}
}

func TestGCRAUpTo(t *testing.T) {
	lims := []limit{lim(100, time.Second, 10)}
	tats := make([]int64, 1)
	now := int64(time.Hour)
	if d := gcraTake(tats, now, lims, 4); d.granted != 4 || d.remaining != 6 {
		t.Fatalf("want 4: %+v", d)
	}
	if d := gcraTake(tats, now, lims, 8); d.granted != 6 || d.remaining != 0 {
		t.Fatalf("want 8 with 6 left: %+v", d)
	}
	if d := gcraTake(tats, now, lims, 8); d.granted != 0 || d.retry != int64(10*time.Millisecond) {
		t.Fatalf("empty: %+v", d)
	}
}

func TestCeilSeconds(t *testing.T) {
	for _, c := range []struct{ ns, want int64 }{
		{0, 0}, {-5, 0}, {1, 1}, {int64(time.Second), 1}, {int64(time.Second) + 1, 2}, {int64(59 * time.Second), 59},
	} {
		if got := ceilSeconds(c.ns); got != c.want {
			t.Errorf("ceilSeconds(%d) = %d, want %d", c.ns, got, c.want)
		}
	}
}

func TestShareLimits(t *testing.T) {
	lims := []limit{lim(100, time.Second, 100), lim(3, time.Minute, 3)}
	got := shareLimits(nil, lims, 2)
	if got[0].T != 2*lims[0].T || got[0].burst != 50 || got[0].tau != 50*got[0].T {
		t.Errorf("share of 100/s burst 100 over 2 nodes: %+v", got[0])
	}
	if got[1].burst != 2 {
		t.Errorf("share of burst 3 over 2 nodes: %d, want ceil = 2", got[1].burst)
	}
	if one := shareLimits(nil, lims, 1); one[0] != lims[0] {
		t.Errorf("1 node must keep the limit: %+v", one[0])
	}
	if many := shareLimits(nil, lims, 1000); many[0].burst != 1 {
		t.Errorf("burst must stay >= 1: %+v", many[0])
	}
}

func TestLocalStoreExpiresIdleKeys(t *testing.T) {
	lims := []limit{lim(10, time.Second, 2)}
	s := newLocalStore(1000, 1)
	now := int64(time.Hour)
	for i := range 100 {
		s.take([]byte{byte(i)}, now, lims, 1)
	}
	if n := s.t.len(); n != 100 {
		t.Fatalf("len = %d", n)
	}
	if n := s.t.sweep(now + int64(99*time.Millisecond)); n != 0 {
		t.Fatalf("swept %d entries whose buckets are not full yet", n)
	}
	if n := s.t.sweep(now + int64(100*time.Millisecond)); n != 100 {
		t.Fatalf("swept %d, want all 100 (their buckets are full)", n)
	}
	if n := s.t.len(); n != 0 {
		t.Fatalf("len after sweep = %d", n)
	}
}

func TestTableBounded(t *testing.T) {
	lims := []limit{lim(1, time.Hour, 5)}
	const maxKeys = 256
	s := newLocalStore(maxKeys, 1)
	now := int64(time.Hour)
	for i := range 10 * maxKeys {
		s.take([]byte{byte(i), byte(i >> 8)}, now, lims, 1)
		now++
	}
	if n := s.t.len(); n > maxKeys+len(s.t.shards) || n < maxKeys {
		t.Fatalf("table holds %d entries, want %d (at most %d over, one per shard)", n, maxKeys, len(s.t.shards))
	}
	if c := s.t.count.Load(); c != int64(s.t.len()) {
		t.Fatalf("count %d != len %d", c, s.t.len())
	}
	for i := range s.t.shards {
		sh := &s.t.shards[i]
		if len(sh.idx)+len(sh.free) != len(sh.slots)/s.t.stride {
			t.Fatalf("shard %d: %d live + %d free != %d slots", i, len(sh.idx), len(sh.free), len(sh.slots)/s.t.stride)
		}
	}
}

func TestTableEvictsNearestToFull(t *testing.T) {
	tb := newTable(1, 2) // full as soon as one key is in
	now := int64(time.Hour)
	// Find two keys in the same shard.
	a := []byte("a")
	var b []byte
	for i := 0; ; i++ {
		b = []byte{'b', byte(i), byte(i >> 8)}
		if tb.shardFor(b) == tb.shardFor(a) {
			break
		}
	}
	sh := tb.shardFor(a)
	sh.mu.Lock()
	e := tb.entry(sh, a, now)
	e[0] = now + 10 // not expired
	e[1] = 42
	e2 := tb.entry(sh, b, now) // shard full: a is evicted
	sh.mu.Unlock()
	if len(sh.idx) != 1 || tb.lookup(sh, a) != nil || e2[1] != 0 || tb.count.Load() != 1 {
		t.Fatalf("a should have been evicted for b: idx=%v e2=%v", sh.idx, e2)
	}
}
