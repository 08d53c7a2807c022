package ratelimit

import (
	"time"

	"github.com/weirgw/weir/plugins/internal/redisguard"
)

// leaseStore is the hybrid mode (`hybrid: {batch: N}`) for very hot keys:
// a node takes up to N tokens from Redis in one decision (the same script,
// with want = N; it grants what every limit can give) and spends them
// locally, so most requests of a hot key never touch Redis.
//
// The batch adapts per key so that cold keys do not hoard tokens: a key
// starts at 1 (exactly policy: redis); each time a lease is spent before it
// ends the next ask doubles, up to N; each time a lease ends with tokens
// unspent (after max_hold) the next ask halves. A rejection from Redis is
// remembered until the Retry-After it came with, so a key being hammered
// past its limit is refused locally too instead of in Redis.
//
// Worst-case over-admission: tokens a node spends in a window were granted
// by Redis in that window or held at its start. Redis grants at most
// burst + rate*W in any window of length W (GCRA), and a node holds at most
// N-1 tokens at any instant (it fetches only when empty and spends one of
// the batch at once; a request that arrives while its node is already
// fetching for the key waits for that fetch and spends from it). So across `nodes`
// nodes, in any window W:
//
//	admitted <= burst + rate*W + nodes*(N-1)
//
// TestHybridWorstCaseOverAdmission builds exactly that case.
//
// Entry slots, see the constants below.
type leaseStore struct {
	t       *table
	remote  *remote
	batch   int64
	maxHold int64
	now     func() int64 // the filter's monotonic clock
}

const (
	lsExpiry      = iota // max(leaseEnd, rejectUntil, resetAt): the table's expiry slot
	lsTokens             // tokens held, unspent
	lsWant               // the next batch size to ask for
	lsFetching           // 1 while a request fetches a lease for this key
	lsIdx                // reported limit, from the last Redis answer
	lsRemaining          // Redis's remaining after the last lease
	lsResetAt            // when the reported bucket is full again (mono ns)
	lsLeaseEnd           // held tokens are dropped after this (mono ns)
	lsRejectUntil        // Redis said no token before this (mono ns)
	lsStride
)

func newLeaseStore(cfg *config, r *remote, now func() int64) *leaseStore {
	return &leaseStore{
		t:       newTable(cfg.maxKeys, lsStride),
		remote:  r,
		batch:   int64(cfg.batch),
		maxHold: int64(cfg.maxHold),
		now:     now,
	}
}

// take decides for key. An error means Redis was needed and could not
// decide; the caller applies on_store_failure.
func (s *leaseStore) take(key []byte, now int64, b *redisguard.Budget, m *routeMetrics) (decision, error) {
	sh := s.t.shardFor(key)
	sh.mu.Lock()
	e := s.t.entry(sh, key, now)
	for e[lsFetching] != 0 {
		// Another request is fetching this key's next lease: wait for it
		// (bounded by that request's Redis budget, which started before
		// ours) and spend from what it brings, rather than send every
		// concurrent request to Redis, which on a hot key would be most
		// of them. The wait is Redis time spent on this request's behalf:
		// it comes off this request's budget, so a failed fetch followed
		// by our own does not add up to twice the timeout.
		waitStart := time.Now()
		sh.cond.Wait()
		b.Charge(time.Since(waitStart))
		now = s.now()
		e = s.t.entry(sh, key, now)
	}
	if e[lsTokens] > 0 && now < e[lsLeaseEnd] {
		e[lsTokens]--
		d := decision{
			granted:   1,
			idx:       int(e[lsIdx]),
			remaining: e[lsRemaining] + e[lsTokens],
			reset:     max(e[lsResetAt]-now, 0),
			store:     storeLease,
		}
		sh.mu.Unlock()
		d.limit = s.remote.store.limits[d.idx].burst
		return d, nil
	}
	if now < e[lsRejectUntil] {
		d := decision{
			idx:   int(e[lsIdx]),
			reset: max(e[lsResetAt]-now, 0),
			retry: e[lsRejectUntil] - now,
			store: storeLease,
		}
		sh.mu.Unlock()
		d.limit = s.remote.store.limits[d.idx].burst
		return d, nil
	}
	switch {
	case e[lsTokens] > 0: // the lease ended unspent: ask for less
		e[lsWant] = max(1, e[lsWant]/2)
		e[lsTokens] = 0
	case e[lsLeaseEnd] > now: // spent before it ended: the key is hot
		e[lsWant] = min(s.batch, max(1, e[lsWant])*2)
	}
	want := max(1, e[lsWant])
	e[lsWant] = want
	e[lsFetching] = 1
	sh.mu.Unlock()

	d, err := s.remote.take(key, want, now, b, m)

	now = s.now()
	sh.mu.Lock()
	e = s.t.entry(sh, key, now) // it may have been evicted meanwhile
	e[lsFetching] = 0
	sh.cond.Broadcast() // waiters re-check (the cond is per shard, not per key)
	if err != nil {
		sh.mu.Unlock()
		return d, err
	}
	e[lsIdx] = int64(d.idx)
	e[lsResetAt] = now + d.reset
	if d.granted > 0 {
		e[lsTokens] = d.granted - 1
		e[lsLeaseEnd] = now + s.maxHold
		e[lsRemaining] = d.remaining
		e[lsRejectUntil] = 0
		d.remaining += e[lsTokens]
	} else {
		e[lsTokens] = 0
		e[lsRemaining] = 0
		e[lsRejectUntil] = now + d.retry
	}
	e[lsExpiry] = max(e[lsLeaseEnd], e[lsRejectUntil], e[lsResetAt])
	sh.mu.Unlock()
	return d, nil
}

// held counts the tokens this node holds for key (tests).
func (s *leaseStore) held(key []byte) int64 {
	sh := s.t.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := s.t.lookup(sh, key); e != nil && s.now() < e[lsLeaseEnd] {
		return e[lsTokens]
	}
	return 0
}

// want returns the batch size key would ask for next (tests).
func (s *leaseStore) want(key []byte) int64 {
	sh := s.t.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := s.t.lookup(sh, key); e != nil {
		return e[lsWant]
	}
	return 0
}
