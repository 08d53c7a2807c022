// Package ratelimit is the rate_limit plugin: token buckets per key
// (consumer, ip, route, header:NAME or a combination), one or several
// limits per route, kept in process memory (policy: local) or in Redis
// (policy: redis, optionally with hybrid leases for hot keys). See
// README.md for the config, the algorithm and the guarantees.
package ratelimit

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/attribute"

	"github.com/weirgw/weir/plugins/internal/redisguard"
	"github.com/weirgw/weir/sdk"
)

func init() {
	sdk.Register(sdk.Factory{Name: "rate_limit", New: New})
}

// Header names of draft-ietf-httpapi-ratelimit-headers (the -06 form with
// separate fields) and RFC 9110 §10.2.3.
const (
	hdrLimit      = "RateLimit-Limit"
	hdrRemaining  = "RateLimit-Remaining"
	hdrReset      = "RateLimit-Reset"
	hdrRetryAfter = "Retry-After"
)

// filter is one rate_limit instance. It is shared by all requests of a
// snapshot; everything on it is safe for concurrent use.
type filter struct {
	cfg     *config
	metrics *metricSet
	now     func() int64 // monotonic ns; replaced in tests

	local  *localStore    // policy: local
	remote *remote        // policy: redis
	lease  *leaseStore    // policy: redis with hybrid
	coal   *coalescer     // policy: redis without hybrid
	fb     *fallbackStore // policy: redis, on_store_failure: local

	nodes atomic.Int64                  // the node count the fallback divides by
	share atomic.Pointer[shareSnapshot] // the limits divided by nodes

	heartbeatEvery time.Duration
	stop           chan struct{}
	wg             sync.WaitGroup
	closeOnce      sync.Once
}

type shareSnapshot struct {
	nodes  int64
	limits []limit
}

// remote is Redis behind the shared guard: a circuit breaker, and a
// bound on the Redis time of each decision. With on_store_failure: local
// it also keeps the fallback in step with Redis (see fallbackStore).
type remote struct {
	store *redisStore
	guard *redisguard.Guard
	fb    *fallbackStore // nil unless on_store_failure: local
	now   func() int64   // the filter's monotonic clock
}

// take asks Redis for up to want tokens unless the breaker is open or the
// decision's budget is spent (redisguard.ErrOpen, redisguard.ErrBudget).
// It charges Redis with what this node admitted for key without it, and
// gives the fallback Redis's answer to start from (and a late answer,
// counted in m).
func (r *remote) take(key []byte, want, now int64, b *redisguard.Budget, m *routeMetrics) (decision, error) {
	if r.fb == nil {
		return r.store.take(r.guard, key, want, now, b, nil, nil, nil, nil)
	}
	var ch *charge
	c, owed := r.fb.owed(key, now)
	if owed {
		ch = &c
	}
	var rel [maxLimits]int64
	d, err := r.store.take(r.guard, key, want, now, b, ch, &rel, r.fb, m)
	if err == nil {
		// The clock after the answer: Redis read its own between the two,
		// so the share's TAT lands at or after Redis's, an emptier bucket
		// by at most the round trip: the fallback may admit a little less,
		// never more.
		r.fb.observe(key, r.now(), &rel, ch)
	}
	return d, err
}

// New builds a rate_limit filter from its config (see README.md).
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	cfg, err := parseConfig(b, raw)
	if err != nil {
		return nil, err
	}
	return newFilter(b, cfg), nil
}

func newFilter(b *sdk.Build, cfg *config) *filter {
	f := &filter{cfg: cfg, metrics: &metricSet{}, now: monoNow, heartbeatEvery: heartbeatEvery}
	if b.Route != "" {
		f.metrics.fixed = newRouteMetrics(b.Route)
	}
	if cfg.policy == policyLocal {
		f.local = newLocalStore(cfg.maxKeys, len(cfg.limits))
		return f
	}
	f.remote = &remote{store: newRedisStore(b.Redis, b.Route, cfg), guard: redisguard.New(), now: monoNow}
	if cfg.onFailure == failLocal {
		f.fb = newFallbackStore(cfg)
		f.remote.fb = f.fb
	}
	if cfg.hybridOn() {
		f.lease = newLeaseStore(cfg, f.remote, monoNow)
	} else {
		f.coal = newCoalescer(f.remote, cfg.limits)
	}
	f.nodes.Store(int64(max(1, cfg.nodes)))
	return f
}

// The access log's ratelimit field (sdk.Ctx.SetLogField).
var (
	logAllowed  = []byte("allowed")
	logRejected = []byte("rejected")
)

// OnRequest decides, sets the RateLimit-* headers and answers 429 when
// the request is over a limit.
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	m := f.metrics.get(c.Route)
	kb := keyBufPool.Get().(*keyBuf)
	kb.b = f.cfg.key.appendKey(kb.b[:0], c)
	d := f.decide(kb.b, m)
	keyBufPool.Put(kb)
	if d.redis >= redisguard.SlowSpanAfter && c.TraceContext() != nil {
		redisSpan(c, &d)
	}

	m.decisions[d.store].Inc()
	if d.granted > 0 {
		c.SetLogField("ratelimit", logAllowed)
	} else {
		c.SetLogField("ratelimit", logRejected)
	}
	if d.noHeaders {
		return sdk.Continue, nil
	}
	// Deferred (SetResponseHeader) so they reach the client on whatever
	// response it finally gets, the upstream's included.
	c.SetResponseHeaderInt(hdrLimit, d.limit)
	c.SetResponseHeaderInt(hdrRemaining, d.remaining)
	c.SetResponseHeaderInt(hdrReset, ceilSeconds(d.reset))
	if d.granted > 0 {
		return sdk.Continue, nil
	}
	m.rejected.Inc()
	c.SetResponseHeaderInt(hdrRetryAfter, max(1, ceilSeconds(d.retry)))
	return c.Fail(429, "rate limit exceeded"), nil
}

// decide makes one decision for key. It never fails: when Redis cannot
// decide, on_store_failure does (SPEC: never a 5xx because Redis is down).
func (f *filter) decide(key []byte, m *routeMetrics) decision {
	now := f.now()
	if f.local != nil {
		d := f.local.take(key, now, f.cfg.limits, 1)
		d.store = storeLocal
		return d
	}
	var d decision
	var err error
	shared := false
	// One budget per decision: a request that waited for another
	// request's call (a hybrid fetch, a coalesced batch) spends what is
	// left of it on its own.
	b := redisguard.NewBudget(f.cfg.timeout)
	if f.lease != nil {
		d, err = f.lease.take(key, now, &b, m)
	} else {
		d, shared, err = f.coal.take(key, now, &b, m)
	}
	spent := f.cfg.timeout - b.Left()
	if err == nil {
		d.redis = spent
		return d
	}
	if err != redisguard.ErrOpen && err != redisguard.ErrBudget && !shared {
		m.storeErrors.Inc() // once per call, not per request it carried
	}
	d = f.fallback(key, now, err)
	d.redis, d.redisErr = spent, err
	return d
}

// redisSpan records a slow decision's Redis time as a span (see
// redisguard.SlowSpan).
func redisSpan(c *sdk.Ctx, d *decision) {
	redisguard.SlowSpan(c, "redis rate_limit", d.redis, d.redisErr,
		attribute.String("weir.rate_limit.store", storeNames[d.store]),
		attribute.Bool("weir.rate_limit.granted", d.granted > 0))
}

// fallback decides without Redis, per on_store_failure; err is why Redis
// did not decide.
func (f *filter) fallback(key []byte, now int64, err error) decision {
	switch f.cfg.onFailure {
	case failAllow:
		return decision{granted: 1, store: storeFallback, noHeaders: true}
	case failDeny:
		return decision{limit: f.cfg.limits[0].burst, reset: int64(time.Second),
			retry: int64(time.Second), store: storeFallback}
	}
	// A decision that timed out may still run in Redis: it is decided as
	// Redis would, on the whole limit as Redis last described it, and not
	// owed. Any other decision is this node's share, and owed.
	d := f.fb.take(key, now, f.shareLimits())
	d.store = storeFallback
	return d
}

// shareLimits returns the limits divided by the current node count,
// recomputed only when the count changes.
func (f *filter) shareLimits() []limit {
	n := f.nodes.Load()
	if s := f.share.Load(); s != nil && s.nodes == n {
		return s.limits
	}
	s := &shareSnapshot{nodes: n, limits: shareLimits(make([]limit, 0, len(f.cfg.limits)), f.cfg.limits, n)}
	f.share.Store(s)
	return s.limits
}

// Start runs the background work: sweeping idle keys out of the in-process
// tables and, when `nodes` is not configured and the fallback is local,
// the node-count heartbeat.
func (f *filter) Start() error {
	f.stop = make(chan struct{})
	var tables []*table
	if f.local != nil {
		tables = append(tables, f.local.t)
	}
	if f.fb != nil {
		tables = append(tables, f.fb.t)
	}
	if f.lease != nil {
		tables = append(tables, f.lease.t)
	}
	f.wg.Add(1)
	go f.sweepLoop(tables)
	if f.remote != nil && f.cfg.onFailure == failLocal && f.cfg.nodes == 0 {
		f.wg.Add(1)
		go f.heartbeatLoop()
	}
	return nil
}

// Close stops what Start started. The Redis client is the gateway's and is
// not closed here.
func (f *filter) Close() error {
	f.closeOnce.Do(func() {
		if f.stop != nil {
			close(f.stop)
		}
	})
	f.wg.Wait()
	return nil
}

// sweepEvery is how often idle keys are dropped. Between sweeps, tables
// stay within max_keys by evicting on insert.
const sweepEvery = 10 * time.Second

func (f *filter) sweepLoop(tables []*table) {
	defer f.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			now := monoNow()
			for _, tb := range tables {
				tb.sweep(now)
			}
		}
	}
}

func (f *filter) heartbeatLoop() {
	defer f.wg.Done()
	client := f.remote.store.client
	id := nodeID(client)
	t := time.NewTicker(f.heartbeatEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if n, err := heartbeat(ctx, client, id); err == nil && n > 0 {
			f.nodes.Store(min(n, maxNodes))
		}
		cancel()
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
	}
}

// setClock replaces the monotonic clock (tests).
func (f *filter) setClock(now func() int64) {
	f.now = now
	if f.remote != nil {
		f.remote.now = now
	}
	if f.lease != nil {
		f.lease.now = now
	}
}

// client is the Redis client of a redis-policy filter (tests).
func (f *filter) client() rueidis.Client { return f.remote.store.client }
