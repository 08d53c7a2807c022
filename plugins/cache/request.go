package cache

import (
	"bytes"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/weirgw/weir/internal/httpsyntax"
	"github.com/weirgw/weir/plugins/internal/redisguard"

	"github.com/weirgw/weir/sdk"
)

// ctxKey is the type of the key under which the plugin keeps its
// per-request state on sdk.Ctx; a pointer to a package variable so that
// SetValue does not allocate.
type ctxKey struct{ _ byte }

var stateKey = &ctxKey{}

// Marks stored instead of a reqState when nothing needs remembering.
type stateMark struct{ name string }

var (
	markServed     = &stateMark{"served"}     // the cache wrote the response
	markBypass     = &stateMark{"bypass"}     // not looked up, nothing to store
	markInvalidate = &stateMark{"invalidate"} // unsafe method: invalidate on success
)

// reqState is what a looked-up request carries from OnRequest to
// OnResponse. It is pooled: acquired in OnRequest, returned in OnLog (or
// immediately when the request is answered from the cache). The entries
// it holds are read-only views into the store.
type reqState struct {
	key    []byte // primary key
	vkey   []byte // variant key, when the primary key held a Vary marker
	marker entry  // the marker seen at lookup
	stale  entry  // stored entry being revalidated / kept for stale-if-error
	fl     *flight

	requestTime  int64
	rcc          reqDirectives
	isHead       bool
	revalidating bool // our validators were sent upstream
	replaced     bool // the client's validators were taken off the request
	clientINM    []byte
	clientIMS    []byte
	done         bool
	// redis is the request's Redis time: the lookups and the writes of
	// one request share it (redis_timeout in all).
	redis redisguard.Budget
}

var statePool = sync.Pool{New: func() any { return &reqState{} }}

func acquireState() *reqState { return statePool.Get().(*reqState) }

func releaseState(st *reqState) {
	st.key = st.key[:0]
	st.vkey = st.vkey[:0]
	st.marker, st.stale, st.fl = nil, nil, nil
	st.requestTime = 0
	st.rcc = reqDirectives{}
	st.isHead, st.revalidating, st.replaced, st.done = false, false, false, false
	st.clientINM = st.clientINM[:0]
	st.clientIMS = st.clientIMS[:0]
	st.redis = redisguard.Budget{}
	statePool.Put(st)
}

// flightKey is the key collapsed requests wait on: the variant when the
// resource is known to vary, else the primary key.
func (st *reqState) flightKey() []byte {
	if st.marker != nil {
		return st.vkey
	}
	return st.key
}

// primaryOrVariant is the key the looked-up response is stored under.
func (st *reqState) primaryOrVariant() []byte { return st.flightKey() }

// Lookup outcomes.
const (
	useRevalidate = iota // stale or no-cache: go upstream, conditionally when possible
	useFresh             // serve as HIT
	useStaleOK           // stale, but the client allows it (max-stale): serve as STALE
	useSWR               // stale within stale-while-revalidate
)

// OnRequest answers fresh hits, prepares revalidation of stale entries
// and collapses concurrent misses (sdk.Filter).
func (f *Filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	req := c.Request()
	m := req.Header.Method()
	isGet := string(m) == "GET"
	isHead := !isGet && string(m) == "HEAD"
	if !(isGet && f.getOK) && !(isHead && f.headOK) {
		if isGet || isHead || isSafeMethod(m) {
			c.SetValue(stateKey, markBypass)
		} else {
			c.SetValue(stateKey, markInvalidate)
		}
		f.bypass(c)
		return sdk.Continue, nil
	}
	var rcc reqDirectives
	for k, v := range req.Header.All() {
		if httpsyntax.EqualFoldLower(k, "cache-control") {
			parseRequestCC(&rcc, v)
		}
	}
	if rcc.has(qNoStore) {
		// RFC 9111 §5.2.1.5: nothing of this exchange may be stored; the
		// simplest faithful reading is not to involve the cache at all.
		c.SetValue(stateKey, markBypass)
		f.bypass(c)
		return sdk.Continue, nil
	}

	sc := f.scope.Load()
	now := f.now().UnixNano()
	st := acquireState()
	st.key = appendPrimaryKey(st.key[:0], c)
	if bytes.IndexByte(st.key, 0) >= 0 {
		// A decoded NUL in the path could forge a variant key (they use
		// 0x00 as separator): such requests are not cached.
		releaseState(st)
		c.SetValue(stateKey, markBypass)
		f.bypass(c)
		return sdk.Continue, nil
	}
	st.rcc = rcc
	st.isHead = isHead
	st.requestTime = now
	st.redis = redisguard.NewBudget(time.Duration(f.cfg.RedisTimeout))

	e, ok := f.lookup(c, sc, st, now)
	if spent := time.Duration(f.cfg.RedisTimeout) - st.redis.Left(); spent >= redisguard.SlowSpanAfter {
		redisguard.SlowSpan(c, "redis cache", spent, nil, attribute.Bool("weir.cache.found", ok))
	}
	if ok {
		switch f.usable(e, &rcc, now) {
		case useFresh:
			return f.answer(c, st, e, now, xHit, resHit)
		case useStaleOK:
			return f.answer(c, st, e, now, xStale, resStale)
		case useSWR:
			// RFC 5861 §3: one request revalidates, the others are
			// served the stale copy meanwhile.
			fl, leader, _ := sc.flights.join(st.flightKey(), now, f.lockTimeout)
			if !leader && fl != nil {
				return f.answer(c, st, e, now, xStale, resStale)
			}
			st.fl = fl
		}
		st.stale = e
	}
	if rcc.has(qOnlyIfCached) {
		// RFC 9111 §5.2.1.7.
		releaseState(st)
		c.SetValue(stateKey, markServed)
		f.count(c, resMiss)
		return c.Fail(504, "not in cache (only-if-cached)"), nil
	}
	if isHead {
		// A HEAD response has no body to store: pass it through.
		releaseState(st)
		c.SetValue(stateKey, markBypass)
		f.count(c, resMiss)
		c.SetResponseHeader("X-Cache-Status", xMiss)
		return sdk.Continue, nil
	}

	if st.fl == nil && f.collapse && !rcc.has(qNoCache) {
		fl, leader, pass := sc.flights.join(st.flightKey(), now, f.lockTimeout)
		switch {
		case leader:
			st.fl = fl
		case !pass && fl != nil:
			if fl.wait(f.lockTimeout) && fl.stored {
				now = f.now().UnixNano()
				if e2, ok2 := f.lookup(c, sc, st, now); ok2 {
					if f.usable(e2, &rcc, now) == useFresh {
						return f.answer(c, st, e2, now, xHit, resHit)
					}
					st.stale = e2
				}
				st.requestTime = now
			}
		}
	}

	if st.stale != nil && st.stale.flags()&eHasValidator != 0 {
		f.addValidators(c, st)
	} else if st.fl != nil {
		// The leader fetches the full response for everyone, so the
		// client's own validators come off (they are evaluated against
		// the stored response afterwards).
		f.takeClientValidators(c, st)
	}
	c.SetValue(stateKey, st)
	return sdk.Continue, nil
}

// lookup finds the entry for the request, following a Vary marker to the
// variant. It fills st.marker and st.vkey.
func (f *Filter) lookup(c *sdk.Ctx, sc *scope, st *reqState, now int64) (entry, bool) {
	st.marker = nil
	e, ok := sc.st.get(st.key, now, &st.redis)
	if !ok {
		return nil, false
	}
	if e.kind() == kindMarker {
		st.marker = e
		st.vkey = appendVariantKey(st.vkey[:0], st.key, e.markerID(), e.varyNames(), reqHeadersOf(c))
		e, ok = sc.st.get(st.vkey, now, &st.redis)
		if !ok || e.kind() != kindResponse {
			return nil, false
		}
	}
	return e, true
}

func reqHeadersOf(c *sdk.Ctx) requestHeaders {
	r := requestHeaders{h: &c.Request().Header}
	if cons := c.Consumer(); cons != nil {
		r.hasConsumer = true
		r.consumer = cons.Name
		r.consumerGrps = cons.GroupsHeader
	}
	return r
}

// usable decides how a stored entry may answer the request (RFC 9111
// §4.2 freshness, §4.2.4 serving stale, §5.2.1 request directives).
func (f *Filter) usable(e entry, rcc *reqDirectives, now int64) int {
	age := e.age(now)
	life := e.lifetime()
	noCache := e.flags()&eNoCache != 0 || rcc.has(qNoCache)
	if rcc.has(qMaxAge) && age > rcc.maxAge*int64(1e9) {
		return useRevalidate
	}
	if !noCache && age < life {
		if rcc.has(qMinFresh) && life-age < rcc.minFresh*int64(1e9) {
			return useRevalidate
		}
		return useFresh
	}
	if noCache || e.flags()&eNoStale != 0 {
		return useRevalidate
	}
	staleness := age - life
	if rcc.has(qMaxStale) && (rcc.has(qMaxStaleAny) || staleness <= rcc.maxStale*int64(1e9)) {
		return useStaleOK
	}
	if e.swr() > 0 && staleness <= e.swr()*int64(1e9) {
		return useSWR
	}
	return useRevalidate
}

// answer writes e as the response and stops the chain.
func (f *Filter) answer(c *sdk.Ctx, st *reqState, e entry, now int64, x []byte, res int) (sdk.Status, error) {
	if err := f.writeEntry(c, e, now, x, condsOf(c)); err != nil {
		// A corrupt object: drop it and go upstream as a plain miss.
		sc := f.scope.Load()
		sc.st.del(st.key)
		releaseState(st)
		c.SetValue(stateKey, markBypass)
		f.count(c, resMiss)
		return sdk.Continue, nil
	}
	releaseState(st)
	c.SetValue(stateKey, markServed)
	f.count(c, res)
	return sdk.Stop, nil
}

// addValidators turns the forwarded request into a conditional one for
// the stored entry (RFC 9111 §4.3.1), keeping the client's validators to
// answer the client afterwards.
func (f *Filter) addValidators(c *sdk.Ctx, st *reqState) {
	f.takeClientValidators(c, st)
	h := &c.Request().Header
	if et := st.stale.etag(); len(et) > 0 {
		h.SetBytesV("If-None-Match", et)
	}
	if lm := st.stale.lastModifiedRaw(); len(lm) > 0 {
		h.SetBytesV("If-Modified-Since", lm)
	}
	st.revalidating = true
}

func (f *Filter) takeClientValidators(c *sdk.Ctx, st *reqState) {
	h := &c.Request().Header
	st.clientINM = append(st.clientINM[:0], h.Peek("If-None-Match")...)
	st.clientIMS = append(st.clientIMS[:0], h.Peek("If-Modified-Since")...)
	if len(st.clientINM) > 0 || len(st.clientIMS) > 0 {
		h.Del("If-None-Match")
		h.Del("If-Modified-Since")
	}
	st.replaced = true
}

func (f *Filter) bypass(c *sdk.Ctx) {
	c.SetResponseHeader("X-Cache-Status", xBypass)
	f.count(c, resBypass)
}

// isSafeMethod reports RFC 9110 §9.2.1 safe methods; every other method
// (including unknown ones) invalidates on success (RFC 9111 §4.4).
func isSafeMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// OnLog ends a flight whose leader never reached OnResponse and recycles
// the request state (sdk.LogFilter).
func (f *Filter) OnLog(c *sdk.Ctx) {
	st, ok := c.Value(stateKey).(*reqState)
	if !ok {
		return
	}
	c.SetValue(stateKey, markServed)
	if st.fl != nil {
		f.scope.Load().flights.finish(st.flightKey(), st.fl, false, f.now().UnixNano())
		st.fl = nil
	}
	releaseState(st)
}
