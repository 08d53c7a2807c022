package pool

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Registry owns what must outlive a config snapshot: connection pools and
// per-target state. One per process; safe for concurrent use. Entries are
// reference counted by the Services built from it and dropped when the last
// Service holding them is closed (or the target removed).
type Registry struct {
	mu      sync.Mutex
	clients map[clientKey]*clientEntry
	states  map[stateKey]*targetState

	// clock is the time source of breakers and passive health:
	// nanoseconds since the registry was created, monotonic (time.Since
	// reads only the monotonic clock, about half the cost of time.Now).
	// Tests inject a fake clock through newRegistry.
	clock func() int64

	// ipDialer dials IP-literal targets without the DNS cache (so no
	// fasthttp cache-cleaner goroutine for them); dnsDialer caches DNS
	// answers for host names (fasthttp.DefaultDNSCacheDuration). Both dial
	// "tcp4" for host names, like fasthttp's own default, so "localhost"
	// reaches a server bound to 127.0.0.1.
	ipDialer  fasthttp.TCPDialer
	dnsDialer fasthttp.TCPDialer
}

// NewRegistry returns an empty registry on the real clock.
func NewRegistry() *Registry { return newRegistry(nil) }

// newRegistry uses now as its clock when not nil (tests).
func newRegistry(now func() time.Time) *Registry {
	r := &Registry{
		clients:   make(map[clientKey]*clientEntry),
		states:    make(map[stateKey]*targetState),
		ipDialer:  fasthttp.TCPDialer{DisableDNSResolution: true},
		dnsDialer: fasthttp.TCPDialer{},
	}
	if now == nil {
		base := time.Now()
		r.clock = func() int64 { return int64(time.Since(base)) }
	} else {
		base := now()
		r.clock = func() int64 { return int64(now().Sub(base)) }
	}
	return r
}

type clientKey struct {
	addr string
	tls  bool
	opts clientOpts
}

// clientEntry is a shared connection pool. hc is never replaced, so a
// *Member keeps a usable client even after the entry left the registry
// (its in-flight requests finish; idle connections are closed).
type clientEntry struct {
	key  clientKey
	hc   *fasthttp.HostClient
	refs int // guarded by Registry.mu
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

func (r *Registry) acquireClientLocked(t target, o clientOpts) *clientEntry {
	k := clientKey{addr: t.addr, tls: t.tls, opts: o}
	if e := r.clients[k]; e != nil {
		e.refs++
		return e
	}
	e := &clientEntry{key: k, refs: 1, hc: r.newHostClient(t, o)}
	r.clients[k] = e
	return e
}

func (r *Registry) releaseClientLocked(e *clientEntry) {
	e.refs--
	if e.refs > 0 {
		return
	}
	delete(r.clients, e.key)
	// In-flight requests keep their connections; once returned they are
	// closed by fasthttp's idle cleaner after MaxIdleConnDuration.
	e.hc.CloseIdleConnections()
}

// newHostClient builds the pooled client the proxy forwards through.
func (r *Registry) newHostClient(t target, o clientOpts) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:  t.addr,
		IsTLS: t.tls,
		Dial:  r.dialFunc(t, o.connectTimeout),
		// The proxy streams bodies through, keeps the client's path bytes
		// as routed (no dot-segment or slash rewriting) and sends the
		// client's User-Agent, not fasthttp's.
		StreamResponseBody:            true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: false,
		MaxConns:                      o.maxConns,
		MaxConnWaitTimeout:            o.maxConnWait,
		MaxIdleConnDuration:           o.maxIdle,
		ReadTimeout:                   o.timeout,
		WriteTimeout:                  o.timeout,
		// Response headers up to 8 KiB (fasthttp's default is 4 KiB;
		// nginx's proxy_buffer_size is one page, 4 or 8 KiB, and refuses
		// larger headers the same way).
		ReadBufferSize: 8 << 10,
		// The proxy decides retries itself (idempotency, other member,
		// breaker accounting), so the client must never retry.
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
}

// dialFunc dials with the connect timeout. IPv6 literals need "tcp"
// (fasthttp's TCPDialer.DialTimeout is tcp4 only).
func (r *Registry) dialFunc(t target, timeout time.Duration) fasthttp.DialFunc {
	switch {
	case t.ip6:
		return func(addr string) (net.Conn, error) { return r.ipDialer.DialDualStackTimeout(addr, timeout) }
	case t.ip:
		return func(addr string) (net.Conn, error) { return r.ipDialer.DialTimeout(addr, timeout) }
	default:
		return func(addr string) (net.Conn, error) { return r.dnsDialer.DialTimeout(addr, timeout) }
	}
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
