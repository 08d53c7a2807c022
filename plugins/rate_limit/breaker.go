package ratelimit

import (
	"sync/atomic"
	"time"
)

// breaker stops sending decisions to a Redis that is failing, so that a
// dead Redis costs requests nothing (no timeout waited, no connection
// attempt) and is not hammered while it restarts.
//
// Closed: every decision goes to Redis; failThreshold consecutive failures
// open it. Open: no decision goes to Redis until openFor has passed; then
// exactly one request is let through as a probe (half-open). The probe's
// success closes the breaker, its failure opens it for another openFor. So
// recovery after Redis returns takes at most openFor plus one round trip.
type breaker struct {
	fails     atomic.Int32
	openUntil atomic.Int64 // monotonic ns; 0 when closed
	probing   atomic.Bool
	threshold int32
	openFor   int64
}

const (
	defFailThreshold = 3
	defOpenFor       = 250 * time.Millisecond
)

func newBreaker() *breaker {
	return &breaker{threshold: defFailThreshold, openFor: int64(defOpenFor)}
}

// allow reports whether a decision may go to Redis now.
func (b *breaker) allow(now int64) bool {
	ou := b.openUntil.Load()
	if ou == 0 {
		return true
	}
	if now < ou {
		return false
	}
	return b.probing.CompareAndSwap(false, true)
}

// success records a decision Redis made.
func (b *breaker) success() {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
	if b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
		b.probing.Store(false)
	}
}

// failure records a decision Redis did not make.
func (b *breaker) failure(now int64) {
	if b.probing.Load() {
		b.openUntil.Store(now + b.openFor)
		b.probing.Store(false)
		return
	}
	if b.fails.Add(1) >= b.threshold && b.openUntil.Load() == 0 {
		b.openUntil.Store(now + b.openFor)
	}
}

// open reports whether the breaker is open (for tests and metrics).
func (b *breaker) open() bool { return b.openUntil.Load() != 0 }
