package ratelimit

import (
	"math"
	"time"
)

// The buckets are kept as GCRA, the generic cell rate algorithm (ITU-T
// I.371): instead of a token count and a refill time, each limit stores one
// timestamp, the theoretical arrival time (TAT) at which its bucket will be
// full again. With emission interval T = per/rate and tolerance
// tau = burst*T, a request at `now` that wants n tokens is admitted when
//
//	max(TAT, now) + n*T - now <= tau
//
// and then TAT becomes max(TAT, now) + n*T. This admits exactly what a token
// bucket of size `burst` refilled at `rate` per `per` admits, with one
// number per key and no refill arithmetic. An entry whose TAT is in the
// past carries no information (its bucket is full), so it can be dropped at
// any time without changing a decision: that is how idle keys expire.

// decision is the outcome of one take, for the response headers.
type decision struct {
	granted   int64 // tokens granted; 0 means rejected
	idx       int   // the limit reported in the headers (the most restrictive)
	limit     int64 // RateLimit-Limit: that limit's burst
	remaining int64 // RateLimit-Remaining
	reset     int64 // ns until that limit's bucket is full again (RateLimit-Reset)
	retry     int64 // ns until a request could be admitted (Retry-After); rejections, and Redis decisions granting less than asked
	// rejIdx and rejReset are, for a Redis decision that granted less
	// than it asked for, the limit and reset a refusal of the rest
	// reports (see takeScript): what a coalesced call's refused requests
	// are told.
	rejIdx    int
	rejReset  int64
	store     storeKind
	noHeaders bool // admitted without any decision (on_store_failure: allow)
	// redis is the time the decision spent on Redis, and redisErr why
	// Redis did not decide (decide; for the slow-Redis span).
	redis    time.Duration
	redisErr error
}

// gcraTake takes up to want tokens from the buckets whose TATs are tats
// (one per limit, updated in place) at time now. A request is admitted only
// if every limit admits it; tokens are taken from all or none. It grants
// min(want, what every limit can give), so want=1 is the plain decision
// and want>1 is a hybrid lease. The Lua script in redis.go mirrors this
// function line by line.
func gcraTake(tats []int64, now int64, lims []limit, want int64) decision {
	grant := want
	for j := range lims {
		l := &lims[j]
		tat := max(tats[j], now)
		avail := (l.tau - (tat - now)) / l.T // <= 0 when the bucket is empty
		if avail < grant {
			grant = avail
		}
	}
	d := decision{}
	if grant > 0 {
		d.granted = grant
		d.remaining = math.MaxInt64
		for j := range lims {
			l := &lims[j]
			tat := max(tats[j], now) + grant*l.T
			tats[j] = tat
			r := (l.tau - (tat - now)) / l.T
			rs := tat - now
			if r < d.remaining || (r == d.remaining && rs > d.reset) {
				d.idx, d.remaining, d.reset = j, r, rs
			}
		}
		d.limit = lims[d.idx].burst
		return d
	}
	// Rejected: report the limit that keeps the client waiting longest.
	for j := range lims {
		l := &lims[j]
		tat := max(tats[j], now)
		if w := tat + l.T - l.tau - now; w > d.retry {
			d.idx, d.retry, d.reset = j, w, tat-now
		}
	}
	d.limit = lims[d.idx].burst
	return d
}

// maxTAT is the time after which an entry holding tats is idle (all its
// buckets full).
func maxTAT(tats []int64) int64 {
	m := int64(math.MinInt64)
	for _, t := range tats {
		m = max(m, t)
	}
	return m
}

// ceilSeconds converts ns to whole seconds rounding up, as RateLimit-Reset
// and Retry-After (RFC 9110 §10.2.3, delay-seconds) are integers and
// rounding down would tell a client to come back too early.
func ceilSeconds(ns int64) int64 {
	if ns <= 0 {
		return 0
	}
	return (ns + int64(time.Second) - 1) / int64(time.Second)
}

// shareLimits scales lims to one node's share, limit/nodes, for the local
// fallback when Redis is unavailable: rate/nodes and ceil(burst/nodes)
// (at least 1). dst must have room for len(lims).
func shareLimits(dst []limit, lims []limit, nodes int64) []limit {
	dst = dst[:0]
	for _, l := range lims {
		s := l
		if nodes > 1 {
			s.rate = l.rate / float64(nodes)
			s.T = l.T * nodes
			s.burst = max(1, (l.burst+nodes-1)/nodes)
			s.tau = s.burst * s.T
		}
		dst = append(dst, s)
	}
	return dst
}
