package lua

import (
	"sync"
	"sync/atomic"
	"time"
)

// statePool keeps prepared Lua states (script loaded, sandbox applied, PDK
// installed). A gopher-lua LState is not safe for concurrent use and costs
// about 130µs, 100 KB and 580 allocations to prepare (BenchmarkNewState),
// so a request borrows one for one phase call and gives it back.
//
// Ownership: a state taken with get belongs to the caller alone until it
// is handed to put; it must not be touched afterwards. States that hit a
// timeout or a runtime error (spent) are closed by put instead of being
// pooled, and a replacement is prepared by a later get.
type statePool struct {
	// hot is the state given back last, taken and given back with one
	// atomic operation each: with one request at a time per core, most
	// calls need neither the mutex nor the stack. It is used only while
	// nobody waits (waiting), so that a waiter gets a state handed over.
	hot     atomic.Pointer[state]
	waiting atomic.Int32
	// mu guards idle and waiters. idle is a stack: the state given back
	// last is lent first, so a lightly loaded pool keeps reusing the
	// states whose memory is still in the CPU's caches.
	mu      sync.Mutex
	idle    []*state
	waiters int
	// handoff takes a state given back while get waits for one (see get);
	// it holds at most size states, so sending never blocks.
	handoff chan *state

	size    int32
	created atomic.Int32 // pooled-or-borrowed states, at most size
	closed  atomic.Bool
	wait    time.Duration // how long get waits for a busy pool before preparing an extra state
	newFn   func() (*state, error)
}

func newStatePool(size int, wait time.Duration, newFn func() (*state, error)) *statePool {
	return &statePool{idle: make([]*state, 0, size), handoff: make(chan *state, size), size: int32(size), wait: wait, newFn: newFn}
}

// pop takes the last idle state, or nil; p.mu is held.
func (p *statePool) pop() *state {
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	st := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return st
}

// get borrows a state: a pooled one if any is idle; a new one while fewer
// than size exist; otherwise it waits up to p.wait (the timeout, at most
// 50ms) for one to come back (phase calls are short and CPU-bound, and more
// states than cores would not run faster), then prepares an overflow
// state that put will close.
func (p *statePool) get() (*state, error) {
	if st := p.hot.Swap(nil); st != nil {
		return st, nil
	}
	p.mu.Lock()
	st := p.pop()
	p.mu.Unlock()
	if st != nil {
		return st, nil
	}
	select {
	case st := <-p.handoff: // handed to a waiter that gave up
		return st, nil
	default:
	}
	if p.created.Add(1) <= p.size {
		st, err := p.newFn()
		if err != nil {
			p.created.Add(-1)
			return nil, err
		}
		return st, nil
	}
	p.created.Add(-1)
	p.mu.Lock()
	if st := p.pop(); st != nil {
		p.mu.Unlock()
		return st, nil
	}
	p.waiters++
	p.waiting.Add(1)
	p.mu.Unlock()
	// A put that looked at waiting before it was raised may have left its
	// state in hot.
	if st = p.hot.Swap(nil); st == nil {
		t := time.NewTimer(p.wait)
		select {
		case st = <-p.handoff:
		case <-t.C:
		}
		t.Stop()
	}
	p.mu.Lock()
	p.waiters--
	p.waiting.Add(-1)
	p.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := p.newFn()
	if err != nil {
		return nil, err
	}
	st.overflow = true
	return st, nil
}

// put returns a borrowed state. A spent or overflow state, or any state
// once the pool is closed, is closed instead.
func (p *statePool) put(st *state) {
	if st.spent || st.overflow || p.closed.Load() {
		p.discard(st)
		return
	}
	if p.waiting.Load() == 0 {
		if putBeforeHot != nil {
			putBeforeHot()
		}
		if p.hot.CompareAndSwap(nil, st) {
			if p.waiting.Load() == 0 {
				if p.closed.Load() {
					p.close() // closed meanwhile: do not leave st behind
				}
				return
			}
			// A borrower began to wait between the check above and
			// the store, and may have looked at hot before st was
			// there: take a state back out of hot and hand it over
			// below, or it would sit out its whole wait.
			if st = p.hot.Swap(nil); st == nil {
				return // taken meanwhile
			}
		}
	}
	p.mu.Lock()
	switch {
	case p.waiters > 0:
		// At most size states exist, so handoff has room.
		p.handoff <- st
	case len(p.idle) < int(p.size):
		p.idle = append(p.idle, st)
	default:
		// Cannot happen while created <= size; closing is the safe answer.
		p.mu.Unlock()
		p.discard(st)
		return
	}
	p.mu.Unlock()
	if p.closed.Load() {
		p.close() // closed meanwhile: do not leave st behind
	}
}

// putBeforeHot, when set (tests only), runs in put between its look at
// the waiters and its store into hot.
var putBeforeHot func()

func (p *statePool) discard(st *state) {
	if !st.overflow {
		p.created.Add(-1)
	}
	st.close()
}

// fill prepares states until size exist, so that the first requests do not
// pay for it.
func (p *statePool) fill() error {
	for p.created.Add(1) <= p.size {
		st, err := p.newFn()
		if err != nil {
			p.created.Add(-1)
			return err
		}
		p.put(st)
	}
	p.created.Add(-1)
	return nil
}

// close closes the idle states; states still borrowed are closed when they
// come back.
func (p *statePool) close() {
	p.closed.Store(true)
	if st := p.hot.Swap(nil); st != nil {
		p.discard(st)
	}
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, st := range idle {
		p.discard(st)
	}
	for {
		select {
		case st := <-p.handoff:
			p.discard(st)
		default:
			return
		}
	}
}

// idleCount is the number of pooled states (for tests).
func (p *statePool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle) + len(p.handoff)
	if p.hot.Load() != nil {
		n++
	}
	return n
}
