// Package oauth2introspection is Weir's `oauth2_introspection` plugin: it
// asks an OAuth 2.0 authorization server whether a bearer token is active
// (RFC 7662), identifies the consumer from the answer's sub / client_id,
// grants its scopes to later plugins (acl), and caches answers in memory
// and, when the config has `redis`, in Redis shared by every node.
//
// Answers are cached until the earlier of the token's exp and cache_ttl;
// inactive answers for negative_ttl. Concurrent requests presenting the
// same uncached token cause one introspection call. A failing or
// nonsensical server never makes a token active: the request gets
// on_error (503 by default, or 401).
package oauth2introspection

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/weirgw/weir/plugins/internal/bearer"
	"github.com/weirgw/weir/plugins/internal/promlabel"
	"github.com/weirgw/weir/sdk"
)

func init() {
	sdk.Register(sdk.Factory{Name: "oauth2_introspection", New: New})
}

// filter is one plugin instance; immutable after New except for the
// caches and the single-flight group, which are safe for concurrent use.
type filter struct {
	tokens        bearer.Sources
	hide          bool
	maxTokenBytes int

	client      *client
	timeout     time.Duration
	cacheTTL    time.Duration
	negativeTTL time.Duration
	required    []string
	// consumers is the index built with the filter; a request reads the
	// snapshot's (Ctx.Consumers) instead when there is one, so that a
	// filter kept across a change of consumers sees the change.
	consumers  *consumerIndex
	matchNames bool

	mem      *memCache
	redis    *redisCache
	flight   flight
	now      func() time.Time
	log      *slog.Logger
	logLimit logLimiter

	fails       *bearer.Failures[reason]
	reqActive   *metrics.Counter
	reqInactive *metrics.Counter
	reqError    *metrics.Counter
	hitMem      *metrics.Counter
	hitRedis    *metrics.Counter
	miss        *metrics.Counter
	redisErr    *metrics.Counter
	latency     *sdk.Histogram
}

// New validates the config and consumer credentials and prepares the HTTP
// client, caches and metrics. It does no I/O.
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	var route string
	var cs *sdk.Consumers
	log := slog.Default()
	if b != nil {
		route = b.Route
		cs = b.Consumers
		if b.Log != nil {
			log = b.Log
		}
	}
	ix, err := sdk.IndexOf[*consumerIndex](cs, slot)
	if err != nil {
		return nil, err
	}
	lbl := `route=` + promlabel.Quote(route)
	req := func(result string) *metrics.Counter {
		return metrics.GetOrCreateCounter(`weir_introspection_requests_total{` + lbl + `,result="` + result + `"}`)
	}
	cache := func(result string) *metrics.Counter {
		return metrics.GetOrCreateCounter(`weir_introspection_cache_total{` + lbl + `,result="` + result + `"}`)
	}
	f := &filter{
		tokens:        bearer.NewSources(cfg.Header, "", cfg.Query),
		hide:          cfg.HideCredentials,
		maxTokenBytes: cfg.MaxTokenBytes,
		client:        newClient(cfg),
		timeout:       cfg.Timeout.D(),
		cacheTTL:      cfg.CacheTTL.D(),
		negativeTTL:   cfg.NegativeTTL.D(),
		required:      cfg.RequiredScopes,
		consumers:     ix,
		matchNames:    *cfg.MatchConsumerNames,
		mem:           newMemCache(*cfg.CacheSize),
		now:           time.Now,
		log:           log,
		fails:         newFailures(route, cfg.Realm, cfg.OnError, cfg.RequiredScopes),
		reqActive:     req("active"),
		reqInactive:   req("inactive"),
		reqError:      req("error"),
		hitMem:        cache("hit"),
		hitRedis:      cache("redis_hit"),
		miss:          cache("miss"),
		redisErr:      cache("redis_error"),
		latency:       sdk.GetOrCreateHistogram(`weir_introspection_duration_seconds{` + lbl + `}`),
	}
	if b != nil && b.Redis != nil {
		f.redis = &redisCache{client: b.Redis, timeout: cfg.RedisTimeout.D()}
	}
	return f, nil
}

// Close drops the idle connections to the introspection server. The
// Redis client belongs to the proxy and stays open.
func (f *filter) Close() error {
	f.client.transport.CloseIdleConnections()
	return nil
}

// OnRequest authenticates the request by its token's introspection.
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	tok, src := f.tokens.Token(c.Request())
	if tok == nil {
		return f.fails.Fail(c, reasonMissing), nil
	}
	if len(tok) > f.maxTokenBytes {
		return f.fails.Fail(c, reasonTooLarge), nil
	}
	if !b64token(tok) {
		return f.fails.Fail(c, reasonMalformed), nil
	}
	ix := f.index(c)
	key := sha256.Sum256(tok)
	nowMs := f.now().UnixMilli()
	var e *entry
	if f.mem != nil {
		e = f.mem.get(&key, nowMs)
	}
	if e != nil {
		f.hitMem.Inc()
	} else {
		var err error
		// The token is only read during the call, which ends before this
		// request does, so the view into the request is not kept.
		e, err, _ = f.flight.do(key, func() (*entry, error) { return f.resolve(c, ix, &key, tok) })
		if err != nil || e == nil {
			return f.fails.Fail(c, reasonError), nil
		}
	}
	if !e.active {
		return f.fails.Fail(c, reasonInactive), nil
	}
	if !e.scopesOK {
		return f.fails.Fail(c, reasonScope), nil
	}
	c.SetConsumer(f.consumerOf(e, ix), e.credential)
	for _, s := range e.scopes {
		c.AddScope(s)
	}
	if f.hide {
		f.tokens.Hide(c.Request(), src)
	}
	return sdk.Continue, nil
}

// resolve finds the answer for a token missing from the memory cache:
// from Redis when configured (errors there fall through), else from the
// introspection server; it fills both caches.
func (f *filter) resolve(c *sdk.Ctx, ix *consumerIndex, key *[32]byte, tok []byte) (*entry, error) {
	nowMs := f.now().UnixMilli()
	if f.redis != nil {
		in, err := f.redis.get(key, nowMs)
		switch {
		case err != nil:
			f.redisErr.Inc()
			if f.logLimit.allow(time.Now()) {
				f.log.Warn("oauth2_introspection: redis cache read failed; asking the server", "error", err)
			}
		case in != nil:
			f.hitRedis.Inc()
			e := f.entryOf(in, ix)
			if f.mem != nil {
				f.mem.put(key, e, nowMs)
			}
			return e, nil
		}
	}
	f.miss.Inc()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	ctx, span := c.StartSpan(ctx, "oauth2_introspection")
	raw, err := f.client.introspect(ctx, string(tok))
	cancel()
	f.latency.UpdateSince(start)
	if span.IsRecording() {
		endIntrospectionSpan(span, f.client.url, raw, err)
	}
	if err != nil {
		f.reqError.Inc()
		if f.logLimit.allow(time.Now()) {
			f.log.Warn("oauth2_introspection: introspection failed", "url", f.client.url, "error", err)
		}
		return nil, err
	}
	if raw.active {
		f.reqActive.Inc()
	} else {
		f.reqInactive.Inc()
	}
	now := f.now()
	in := normalize(raw, now, f.cacheTTL, f.negativeTTL)
	e := f.entryOf(in, ix)
	nowMs = now.UnixMilli()
	if f.mem != nil {
		f.mem.put(key, e, nowMs)
	}
	if f.redis != nil && in.Until > nowMs {
		if err := f.redis.put(key, in); err != nil {
			f.redisErr.Inc()
			if f.logLimit.allow(time.Now()) {
				f.log.Warn("oauth2_introspection: redis cache write failed", "error", err)
			}
		}
	}
	return e, nil
}

// entryOf builds what an answer grants on this instance: the consumer
// mapping and required scopes are local config, so they are applied here
// rather than stored in the shared cache.
func (f *filter) entryOf(in *introspection, ix *consumerIndex) *entry {
	e := &entry{active: in.Active, until: in.Until}
	if !in.Active {
		return e
	}
	e.sub, e.clientID, e.ix = in.Sub, in.ClientID, ix
	e.consumer = ix.match(in.Sub, in.ClientID, f.matchNames)
	e.credential = in.Sub
	if e.credential == "" {
		e.credential = in.ClientID
	}
	// RFC 7662 §2.2: scope is space-separated (RFC 6749 §3.3).
	e.scopes = strings.Fields(in.Scope)
	e.scopesOK = true
	for _, want := range f.required {
		found := false
		for _, s := range e.scopes {
			found = found || s == want
		}
		e.scopesOK = e.scopesOK && found
	}
	return e
}

// index is the consumer index of the request's consumers.
func (f *filter) index(c *sdk.Ctx) *consumerIndex {
	if x, ok := c.Consumers.Indexed(slot).(*consumerIndex); ok {
		return x
	}
	return f.consumers
}

// consumerOf is the consumer e's token identifies with the consumers of
// ix: the one it was matched to, or, when the consumers changed since it
// was cached (another index), a match against ix, so that a deleted or
// replaced consumer's cached token follows the change at once.
func (f *filter) consumerOf(e *entry, ix *consumerIndex) *sdk.Consumer {
	if e.ix == ix {
		return e.consumer
	}
	return ix.match(e.sub, e.clientID, f.matchNames)
}

// logLimiter lets one warning a second through: during an outage every
// request fails the same way, and the metrics carry the count.
type logLimiter struct{ last atomic.Int64 }

func (l *logLimiter) allow(now time.Time) bool {
	last := l.last.Load()
	n := now.UnixNano()
	return n-last >= int64(time.Second) && l.last.CompareAndSwap(last, n)
}
