package ratelimit

import (
	"strconv"
	"sync/atomic"
)

// fallbackStore is what decides for a key when Redis cannot
// (on_store_failure: local): this node's share of each limit, rate/nodes
// and ceil(burst/nodes), kept in process memory.
//
// A share bucket that starts full whenever Redis fails over-admits under
// load: when Redis is slow rather than down, decisions that time out fall
// back one by one between decisions Redis makes, the breaker opens and
// closes, and a fresh bucket grants on top of what Redis has already
// granted (two loaded gateways admitted 150–175 % of the limit that way).
// So the fallback is tied to Redis in both directions:
//
//   - It starts from what Redis last said. Every Redis answer for a key
//     returns how far each of its buckets is from full (TAT - now), and the
//     share bucket's TAT is raised to it. A share bucket has the same
//     tolerance in time as the whole bucket (burst/nodes tokens of
//     nodes*T each), so the same TAT means the same fraction used: a key
//     that Redis has exhausted is exhausted in the fallback too.
//   - What it admits is owed to Redis, charged (added to the key's TATs,
//     whether or not tokens are left) with the key's next Redis decision,
//     so that the other nodes see it. That includes requests whose Redis
//     call timed out: such a call may or may not have run in Redis (the
//     e2e test saw both), and for the limit's sake it counts as spent. The charge is the node's
//     running total for the key, and Redis keeps per node what it already
//     applied, so a charge whose own answer timed out is sent again and
//     still applied once.
//   - What Redis granted to a call whose answer came too late is given
//     back (late): a credit, sent and applied once like a charge.
//
// The error that is left is timing: above the limit by what is owed and
// not yet charged (the other nodes learn of it with this node's next
// Redis decision), below it by a granted call whose answer never came.
// Debt is capped at the node's share of the burst, credit at a burst,
// both forgiven when older than the longest limit's period (they are
// about a window that is over), and a charge overdraws a bucket by at
// most one more burst (takeScript), so after an outage of any length a
// key waits in Redis at most one period.
//
// Entry slots: [fbExpiry] the table's expiry, then one TAT per limit,
// then the running total of requests admitted here without Redis
// (fbTotal), how much of it Redis has confirmed (fbAcked), when the total
// last grew (fbOwedAt, mono ns), the epoch of the totals (fbEpoch: when
// they started, so that a total restarted after the entry was dropped is
// not mistaken in Redis for the old one), and the same for credits
// (fbCredit, fbCreditAcked, fbCreditAt).
type fallbackStore struct {
	t        *table
	n        int    // limits
	maxTau   int64  // the longest limit's period (tau), ns
	maxBurst int64  // the largest limit's burst
	node     string // this instance's name in Redis's record of charges
	now      func() int64
}

// fbExpiry is the entry's first slot.
const fbExpiry = 0

// Slots after the TATs (indexes into the slice slots returns as x).
const (
	fbTotal = iota
	fbAcked
	fbOwedAt
	fbEpoch
	fbCredit      // running total of tokens Redis granted to calls answered too late
	fbCreditAcked // how much of it Redis has confirmed
	fbCreditAt    // when fbCredit last grew (mono ns)
	fbExtra       // how many
)

// instances numbers the filters of this process: each is a node of its
// own in Redis's record of charges (two instances, e.g. before and after
// a config reload, may share a Redis key).
var instances atomic.Int64

func newFallbackStore(cfg *config) *fallbackStore {
	n := len(cfg.limits)
	s := &fallbackStore{t: newTable(cfg.maxKeys, 1+n+fbExtra), n: n,
		node: processID + "-" + strconv.FormatInt(instances.Add(1), 10)}
	for _, l := range cfg.limits {
		s.maxTau = max(s.maxTau, l.tau)
		s.maxBurst = max(s.maxBurst, l.burst)
	}
	s.now = monoNow
	return s
}

// slots splits an entry into its TATs and the rest.
func (s *fallbackStore) slots(e []int64) (tats, x []int64) {
	return e[1 : 1+s.n], e[1+s.n:]
}

// setExpiry keeps an entry while its buckets are not full or it owes
// Redis a charge that is still worth sending.
func (s *fallbackStore) setExpiry(e []int64) {
	tats, x := s.slots(e)
	exp := maxTAT(tats)
	if x[fbTotal] > x[fbAcked] {
		exp = max(exp, x[fbOwedAt]+s.maxTau)
	}
	if x[fbCredit] > x[fbCreditAcked] {
		exp = max(exp, x[fbCreditAt]+s.maxTau)
	}
	e[fbExpiry] = exp
}

// take decides for key without Redis, on this node's share lims. An
// admission is owed to Redis.
func (s *fallbackStore) take(key []byte, now int64, lims []limit) decision {
	sh := s.t.shardFor(key)
	sh.mu.Lock()
	e := s.t.entry(sh, key, now)
	tats, x := s.slots(e)
	d := gcraTake(tats, now, lims, 1)
	if d.granted > 0 {
		if x[fbEpoch] == 0 {
			x[fbEpoch] = now
		}
		if now-x[fbOwedAt] > s.maxTau {
			// What was owed is about a window that is over.
			x[fbAcked] = x[fbTotal]
		}
		x[fbTotal]++
		share := int64(0)
		for _, l := range lims {
			share = max(share, l.burst)
		}
		x[fbAcked] = max(x[fbAcked], x[fbTotal]-share)
		x[fbOwedAt] = now
	}
	s.setExpiry(e)
	sh.mu.Unlock()
	return d
}

// owed returns the charge key should send with its next Redis call, or
// false when nothing is owed. It does not create an entry.
func (s *fallbackStore) owed(key []byte, now int64) (charge, bool) {
	sh := s.t.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := s.t.lookup(sh, key)
	if e == nil {
		return charge{}, false
	}
	_, x := s.slots(e)
	if now-x[fbOwedAt] > s.maxTau {
		x[fbAcked] = x[fbTotal]
	}
	if now-x[fbCreditAt] > s.maxTau {
		x[fbCreditAcked] = x[fbCredit]
	}
	if x[fbTotal] == x[fbAcked] && x[fbCredit] == x[fbCreditAcked] {
		return charge{}, false
	}
	return charge{node: s.node, epoch: x[fbEpoch], total: x[fbTotal], credit: x[fbCredit]}, true
}

// late records the answer to a call for key that came after its request
// had been decided without it (redisguard.Guard.DoLate): Redis granted it
// granted tokens (0: refused) and applied ch (when not nil). The request
// did not get those tokens from Redis: it was admitted by the fallback,
// which charges Redis for it, or refused. Either way Redis spent a token
// nobody used, so it is given back (a credit, sent with the key's next
// decision as charges are). Without this, every timed-out call Redis
// granted was a token lost, and a saturated key with a slow Redis got
// only 82–93 % of its limit.
func (s *fallbackStore) late(key []byte, granted int64, ch *charge) {
	now := s.now()
	sh := s.t.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := s.t.lookup(sh, key)
	if e == nil {
		if granted == 0 {
			return
		}
		e = s.t.entry(sh, key, now)
	}
	_, x := s.slots(e)
	if ch != nil && ch.epoch == x[fbEpoch] {
		x[fbAcked] = max(x[fbAcked], ch.total)
		x[fbCreditAcked] = max(x[fbCreditAcked], ch.credit)
	}
	if granted > 0 {
		if x[fbEpoch] == 0 {
			x[fbEpoch] = now
		}
		if now-x[fbCreditAt] > s.maxTau {
			x[fbCreditAcked] = x[fbCredit]
		}
		x[fbCredit] += granted
		// Never more than a burst outstanding: a credit is only worth
		// anything while the key's bucket has not filled up since.
		x[fbCreditAcked] = max(x[fbCreditAcked], x[fbCredit]-s.maxBurst)
		x[fbCreditAt] = now
	}
	s.setExpiry(e)
}

// observe records what Redis answered for key at now: each bucket is
// rel[j] ns from full, and Redis has applied ch (when not nil). A key
// whose buckets are all full and that has no entry is not added (nothing
// to remember).
func (s *fallbackStore) observe(key []byte, now int64, rel *[maxLimits]int64, ch *charge) {
	sh := s.t.shardFor(key)
	sh.mu.Lock()
	e := s.t.lookup(sh, key)
	if e == nil {
		full := true
		for j := range s.n {
			full = full && rel[j] <= 0
		}
		if full {
			sh.mu.Unlock()
			return
		}
		e = s.t.entry(sh, key, now)
	}
	tats, x := s.slots(e)
	for j := range tats {
		tats[j] = max(tats[j], now+rel[j])
	}
	if ch != nil && ch.epoch == x[fbEpoch] {
		x[fbAcked] = max(x[fbAcked], ch.total)
		x[fbCreditAcked] = max(x[fbCreditAcked], ch.credit)
	}
	s.setExpiry(e)
	sh.mu.Unlock()
}
