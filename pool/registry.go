package pool

import (
	"crypto/tls"
	"sync"
	"sync/atomic"
	"time"
)

// Registry owns what must outlive a config snapshot: per-target state
// (health, circuit breaker, in-flight count, gauges, active checker). One
// per process; safe for concurrent use. Entries are reference counted by
// the Services built from it and dropped when the last Service holding
// them is closed. Connections are not kept here: the proxy's upstreams
// registry (proxy/upstreams.go) owns one transport per target address.
type Registry struct {
	mu     sync.Mutex
	states map[stateKey]*targetState

	// clock is the time source of breakers and passive health:
	// nanoseconds since the registry was created, monotonic (time.Since
	// reads only the monotonic clock, about half the cost of time.Now).
	// Tests inject a fake clock through newRegistry.
	clock func() int64
}

// NewRegistry returns an empty registry on the real clock.
func NewRegistry() *Registry { return newRegistry(nil) }

// newRegistry uses now as its clock when not nil (tests).
func newRegistry(now func() time.Time) *Registry {
	r := &Registry{states: make(map[stateKey]*targetState)}
	if now == nil {
		base := time.Now()
		r.clock = func() int64 { return int64(time.Since(base)) }
	} else {
		base := now()
		r.clock = func() int64 { return int64(now().Sub(base)) }
	}
	return r
}

type stateKey struct{ service, url string }

// targetState is what the registry remembers about one target of one
// service across snapshots. Hot fields are atomics read by Pick and written
// by Begin/End without locks.
type targetState struct {
	reg *Registry
	key stateKey

	inflight     atomic.Int64
	activeDown   atomic.Bool  // the active checker says down
	passiveUntil atomic.Int64 // clock() until which passive health keeps it out; 0 = in
	consecFail   atomic.Int32 // consecutive failed End calls (passive health)
	latency      atomic.Int64 // EWMA of successful request durations, ns
	brk          breaker

	// Guarded by Registry.mu.
	refs   int
	chk    *checker // the running active checker, nil when none
	gauges [2]string
}

// healthy reports the health-check view (not the breaker).
func (st *targetState) healthy() bool {
	if st.activeDown.Load() {
		return false
	}
	u := st.passiveUntil.Load()
	return u == 0 || st.reg.clock() >= u
}

func (r *Registry) acquireStateLocked(service string, t target) *targetState {
	k := stateKey{service: service, url: t.url}
	if st := r.states[k]; st != nil {
		st.refs++
		return st
	}
	st := &targetState{reg: r, key: k, refs: 1}
	st.gauges = bindGauges(st)
	r.states[k] = st
	return st
}

func (r *Registry) releaseStateLocked(st *targetState) {
	st.refs--
	if st.refs > 0 {
		return
	}
	delete(r.states, st.key)
	unbindGauges(st)
}

// acquireChecker returns the active checker of st for cfg, starting one if
// none runs or if the running one probes with other settings (a reload
// changed the check). The replaced checker is stopped before returning; the
// health state it built is kept.
func (r *Registry) acquireChecker(st *targetState, t target, cfg activeCfg, tlsCfg *tls.Config) *checker {
	r.mu.Lock()
	old := st.chk
	if old != nil && old.cfg == cfg {
		old.refs++
		r.mu.Unlock()
		return old
	}
	if old != nil {
		old.halt() // before the new one starts: never two verdicts at once
	}
	c := newChecker(st, t, cfg, tlsCfg)
	c.refs = 1
	st.chk = c
	c.start()
	r.mu.Unlock()
	if old != nil {
		old.wait()
	}
	return c
}

// releaseChecker drops one reference; the last one stops the checker and
// forgets its verdict (with nobody probing, "down" could never clear).
func (r *Registry) releaseChecker(st *targetState, c *checker) {
	r.mu.Lock()
	c.refs--
	last := c.refs == 0 && st.chk == c
	if last {
		st.chk = nil
		c.halt() // no verdict can land after this ...
		st.activeDown.Store(false)
	}
	r.mu.Unlock()
	if last {
		c.wait() // ... and the goroutine is gone when Close returns
	}
}
