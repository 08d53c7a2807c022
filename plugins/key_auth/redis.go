package keyauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"
	"github.com/weirgw/weir/plugins/internal/confval"
	"github.com/weirgw/weir/plugins/internal/redisguard"
	"github.com/weirgw/weir/plugins/internal/ttlcache"
	"github.com/weirgw/weir/sdk"
)

// RedisLookup is the `redis_lookup` object: keys that no consumer of the
// config has are looked up in Redis (the gateway's `redis` section), so
// that a cluster shares credentials no node holds in its file.
type RedisLookup struct {
	// Timeout bounds the Redis time of one request's lookup. Default 50ms.
	Timeout confval.Duration `json:"timeout"`
	// OnFailure is the status answered when Redis cannot say whether the
	// key exists (down, slow, breaker open): 503 (default) or 401. A key
	// is never admitted without an answer.
	OnFailure int `json:"on_failure"`
	// CacheTTL bounds how long a node serves a credential from its
	// client-side cache without asking Redis; Redis's invalidations
	// (RESP3 tracking) normally end it much sooner. Default 1m.
	CacheTTL confval.Duration `json:"cache_ttl"`
	// NegativeTTL is how long an unknown key is refused without asking
	// Redis again; "0s" disables. Default 2s.
	NegativeTTL confval.Duration `json:"negative_ttl"`
	// NegativeSize bounds the unknown keys remembered. Default 10000.
	NegativeSize *int `json:"negative_size"`
}

const (
	// RedisKeyPrefix is followed by the lower-case hex SHA-256 of the API
	// key: the key itself is never stored in Redis.
	RedisKeyPrefix     = "weir:key_auth:"
	defRedisTimeout    = 50 * time.Millisecond
	defRedisCacheTTL   = time.Minute
	defNegativeTTL     = 2 * time.Second
	defNegativeSize    = 10000
	maxRedisValueBytes = 4096
)

// RedisCredential is the JSON value stored under RedisKeyPrefix+hex.
type RedisCredential struct {
	Consumer string   `json:"consumer"`
	Groups   []string `json:"groups"`
	// ID is the credential ID; default "CONSUMER#" and the first 12 hex
	// digits of the key's SHA-256.
	ID string `json:"id"`
}

// redisLookup finds keys in Redis for one filter.
type redisLookup struct {
	c         rueidis.Client
	timeout   time.Duration
	cacheTTL  time.Duration
	onFailure int
	guard     *redisguard.Guard
	negTTL    int64
	neg       *ttlcache.Cache[[sha256.Size]byte, struct{}] // nil: off
	// parsed keeps what a stored value decoded to, by digest, so that a
	// value served from the client-side cache is decoded only when it
	// changes.
	parsed *ttlcache.Cache[[sha256.Size]byte, *redisEntry]

	cached, fetched, unknown, negative, malformed, failed *metrics.Counter
}

// redisEntry is a decoded credential and the raw value it came from.
type redisEntry struct {
	raw      string
	consumer *sdk.Consumer
	id       string
}

var errRedisUnconfigured = errors.New("redis_lookup: needs the top-level redis section (redis: {addrs: [...]})")

func newRedisLookup(b *sdk.Build, cfg *RedisLookup, route string) (*redisLookup, error) {
	var errs []error
	if !b.RedisConfigured {
		errs = append(errs, errRedisUnconfigured)
	}
	if err := confval.CheckDurations(
		confval.DurationKey{Key: "redis_lookup.timeout", D: &cfg.Timeout, Default: defRedisTimeout},
		confval.DurationKey{Key: "redis_lookup.cache_ttl", D: &cfg.CacheTTL, Default: defRedisCacheTTL},
		confval.DurationKey{Key: "redis_lookup.negative_ttl", D: &cfg.NegativeTTL, Default: defNegativeTTL},
	); err != nil {
		errs = append(errs, err)
	}
	if cfg.Timeout.D() == 0 {
		errs = append(errs, errors.New("redis_lookup.timeout: must be > 0, e.g. \"50ms\""))
	}
	if cfg.CacheTTL.D() < time.Second {
		errs = append(errs, errors.New("redis_lookup.cache_ttl: must be at least \"1s\""))
	}
	switch cfg.OnFailure {
	case 0:
		cfg.OnFailure = 503
	case 401, 503:
	default:
		errs = append(errs, fmt.Errorf("redis_lookup.on_failure: must be 503 or 401, got %d", cfg.OnFailure))
	}
	size := defNegativeSize
	if cfg.NegativeSize != nil {
		if size = *cfg.NegativeSize; size < 0 {
			errs = append(errs, fmt.Errorf("redis_lookup.negative_size: must be >= 0, got %d", size))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	l := &redisLookup{
		c: b.Redis, timeout: cfg.Timeout.D(), cacheTTL: cfg.CacheTTL.D(), onFailure: cfg.OnFailure,
		guard: redisguard.New(), negTTL: int64(cfg.NegativeTTL.D()),
		parsed: ttlcache.New[[sha256.Size]byte, *redisEntry](100_000),
	}
	if l.negTTL > 0 && size > 0 {
		l.neg = ttlcache.New[[sha256.Size]byte, struct{}](size)
	}
	counter := func(result string) *metrics.Counter {
		return metrics.GetOrCreateCounter(fmt.Sprintf(`weir_key_auth_redis_lookups_total{route=%q,result=%q}`, route, result))
	}
	l.cached, l.fetched, l.unknown = counter("cached"), counter("fetched"), counter("unknown")
	l.negative, l.malformed, l.failed = counter("negative"), counter("malformed"), counter("failed")
	return l, nil
}

// RedisKey is the Redis key of an API key's credential.
func RedisKey(key []byte) string {
	d := sha256.Sum256(key)
	return redisKey(&d)
}

func redisKey(d *[sha256.Size]byte) string {
	var buf [len(RedisKeyPrefix) + 2*sha256.Size]byte
	copy(buf[:], RedisKeyPrefix)
	hex.Encode(buf[len(RedisKeyPrefix):], d[:])
	return string(buf[:])
}

type lookupResult uint8

const (
	lookupUnknown lookupResult = iota
	lookupFound
	lookupFailed
)

// lookup finds key in Redis. key is a view into the request; it is not
// kept.
func (l *redisLookup) lookup(key []byte) (*redisEntry, lookupResult) {
	d := sha256.Sum256(key)
	now := monoNow()
	if l.neg != nil {
		if _, ok := l.neg.Get(d[0], d, now); ok {
			l.negative.Inc()
			return nil, lookupUnknown
		}
	}
	call := callPool.Get().(*redisCall)
	call.l, call.k = l, redisKey(&d)
	budget := redisguard.NewBudget(l.timeout)
	err := l.guard.Do(now, &budget, call.fn)
	var val string
	var hit bool
	if err != context.DeadlineExceeded {
		// The call has returned, or never ran: nothing writes to it
		// any more. One still running past the timeout may, so it is
		// neither read nor reused.
		val, hit = call.val, call.hit
		*call = redisCall{fn: call.fn}
		callPool.Put(call)
	}
	switch {
	case rueidis.IsRedisNil(err):
		l.unknown.Inc()
		if l.neg != nil {
			l.neg.Put(d[0], d, struct{}{}, now+l.negTTL, now)
		}
		return nil, lookupUnknown
	case err != nil:
		l.failed.Inc()
		return nil, lookupFailed
	}
	if e, ok := l.parsed.Get(d[0], d, now); ok && e.raw == val {
		l.count(hit)
		return e, lookupFound
	}
	e, err := parseRedisCredential(val, &d)
	if err != nil {
		// A value an operator wrote wrongly refuses its key (and is
		// counted) rather than failing every request.
		l.malformed.Inc()
		return nil, lookupUnknown
	}
	l.parsed.Put(d[0], d, e, now+int64(l.cacheTTL), now)
	l.count(hit)
	return e, lookupFound
}

// redisCall is one GET through the guard, pooled with its bound method
// so that a lookup does not allocate a closure and its results.
type redisCall struct {
	l   *redisLookup
	k   string
	val string
	hit bool
	fn  func(context.Context) error
}

var callPool = sync.Pool{New: func() any {
	c := &redisCall{}
	c.fn = c.run
	return c
}}

// run writes val and hit only while lookup still waits for it
// (redisguard.Guard.Do): lookup reads them after Do returned.
func (c *redisCall) run(ctx context.Context) error {
	r := c.l.c.DoCache(ctx, c.l.c.B().Get().Key(c.k).Cache(), c.l.cacheTTL)
	v, err := r.ToString()
	c.val, c.hit = v, r.IsCacheHit()
	return err
}

func (l *redisLookup) count(hit bool) {
	if hit {
		l.cached.Inc()
	} else {
		l.fetched.Inc()
	}
}

// parseRedisCredential decodes a stored value; d is the key's digest, for
// the default credential ID.
func parseRedisCredential(val string, d *[sha256.Size]byte) (*redisEntry, error) {
	if len(val) > maxRedisValueBytes {
		return nil, fmt.Errorf("value of %d bytes; at most %d", len(val), maxRedisValueBytes)
	}
	var rc RedisCredential
	if err := json.Unmarshal([]byte(val), &rc); err != nil {
		return nil, err
	}
	if rc.Consumer == "" {
		return nil, errors.New(`no "consumer"`)
	}
	id := rc.ID
	if id == "" {
		id = rc.Consumer + "#" + hex.EncodeToString(d[:6])
	}
	// The value is copied out of the client-side cache's memory.
	raw := strings.Clone(val)
	return &redisEntry{raw: raw, id: id, consumer: &sdk.Consumer{
		Name: rc.Consumer, Groups: rc.Groups, GroupsHeader: strings.Join(rc.Groups, ","),
	}}, nil
}

// monoEpoch makes the breaker's and the caches' clock monotonic.
var monoEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(monoEpoch)) }
