package transport

import (
	"sync"
	"sync/atomic"
	"time"
)

// The wait for a connection token (services[].max_conns_per_target
// reached, up to max_conn_wait): a first-come, first-served queue.
//
// A release hands its token straight to the waiter at the head, so a
// request waits for the requests ahead of it and no longer: about
// queued ÷ rate. (A token put back for whoever looks first lets a request
// that just arrived take it ahead of one that has waited; under a
// closed-loop load of 10,000 connections the unlucky ones waited out
// max_conn_wait while the mean wait was a fraction of it.)
//
// A waiter costs a pooled struct and no timer: one timer per transport
// fires at the earliest deadline in the queue (plus a slack of 1/64 of
// that waiter's wait, so that a queue whose waiters time out one after
// the other is swept in batches) and answers every waiter whose wait is
// over.
type waitQueue struct {
	// n is the number of waiters, readable without mu: a release that
	// sees 0 takes no lock.
	n          atomic.Int64
	mu         sync.Mutex
	head, tail *waiter
	sweep      *time.Timer // calls expire; nil until the first wait
	sweepAt    int64       // when sweep fires (monoNow); 0: not armed
}

// waiter is one request in the queue; ready receives true with a token,
// false when its wait is over without one.
type waiter struct {
	ready      chan bool
	deadline   int64 // monoNow
	due        int64 // deadline plus the sweep's slack
	prev, next *waiter
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ready: make(chan bool, 1)} }}

// monoStart anchors monoNow: the monotonic clock in nanoseconds.
var monoStart = time.Now()

func monoNow() int64 { return int64(time.Since(monoStart)) }

// waitToken waits in the queue for a token, up to MaxConnWait (and not
// past deadline).
func (t *Transport) waitToken(deadline time.Time) error {
	wait := t.cfg.MaxConnWait
	if !deadline.IsZero() {
		if d := time.Until(deadline); d < wait {
			wait = d
		}
	}
	if wait <= 0 {
		return ErrPoolTimeout
	}
	q := &t.queue
	q.mu.Lock()
	// Counted before the look: a release either sees the count and
	// grants under the lock, or came before the look, which finds its
	// token.
	q.n.Add(1)
	if q.head == nil && t.tryToken() {
		q.n.Add(-1)
		q.mu.Unlock()
		return nil
	}
	w := waiterPool.Get().(*waiter)
	now := monoNow()
	w.deadline = now + int64(wait)
	w.due = w.deadline + max(int64(wait)/64, int64(time.Millisecond))
	w.prev, w.next = q.tail, nil
	if q.tail == nil {
		q.head = w
	} else {
		q.tail.next = w
	}
	q.tail = w
	t.armSweep(now, w.due)
	q.mu.Unlock()
	ok := <-w.ready
	waiterPool.Put(w)
	if !ok {
		return ErrPoolTimeout
	}
	return nil
}

// tryToken takes a token if one is free.
func (t *Transport) tryToken() bool {
	for {
		n := t.inUse.Load()
		if n >= int64(t.cfg.MaxConns) {
			return false
		}
		if t.inUse.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// putToken gives a token back: to the first waiter when there is one.
// With no queue: an atomic add and two loads.
func (t *Transport) putToken() {
	if t.queue.n.Load() != 0 {
		t.handOff()
		return
	}
	t.inUse.Add(-1)
	if t.queue.n.Load() != 0 {
		// A waiter queued after the look above, maybe after its own
		// look found no token: grant what is free.
		t.grantFree()
	}
}

// handOff gives the caller's token to the first waiter, or back when
// the queue emptied meanwhile.
func (t *Transport) handOff() {
	q := &t.queue
	q.mu.Lock()
	w := t.unqueue(q.head)
	q.mu.Unlock()
	if w != nil {
		w.ready <- true // the token goes on to w: inUse is unchanged
		return
	}
	t.inUse.Add(-1)
	if q.n.Load() != 0 {
		t.grantFree()
	}
}

// grantFree hands the free tokens to waiters, first come first served.
func (t *Transport) grantFree() {
	q := &t.queue
	q.mu.Lock()
	for q.head != nil && t.tryToken() {
		t.unqueue(q.head).ready <- true
	}
	q.mu.Unlock()
}

// unqueue takes w (nil: none) out of the queue; the caller holds mu and
// then answers w (ready has room for the one answer).
func (t *Transport) unqueue(w *waiter) *waiter {
	if w == nil {
		return nil
	}
	q := &t.queue
	if w.prev == nil {
		q.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		q.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
	q.n.Add(-1)
	return w
}

// armSweep makes the sweep fire at `at` if it is not armed to fire
// sooner. The caller holds mu.
func (t *Transport) armSweep(now, at int64) {
	q := &t.queue
	if q.sweepAt != 0 && q.sweepAt <= at {
		return
	}
	q.sweepAt = at
	if q.sweep == nil {
		q.sweep = time.AfterFunc(time.Duration(at-now), t.expire)
	} else {
		q.sweep.Reset(time.Duration(at - now))
	}
}

// expire answers every waiter whose wait is over and arms the sweep for
// the earliest one left.
func (t *Transport) expire() {
	q := &t.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	now := monoNow()
	q.sweepAt = 0
	next := int64(0)
	for w := q.head; w != nil; {
		after := w.next
		switch {
		case w.deadline <= now:
			t.unqueue(w).ready <- false
		case next == 0 || w.due < next:
			next = w.due
		}
		w = after
	}
	if next != 0 {
		t.armSweep(now, next)
	}
}
