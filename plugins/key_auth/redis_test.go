package keyauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func TestRedisLookupConfig(t *testing.T) {
	withRedis := &sdk.Build{Route: "r", Consumers: testConsumers(), RedisConfigured: true}
	plugintest.Configs(t, New, withRedis, []plugintest.ConfigCase{
		{Name: "defaults", Cfg: `{"redis_lookup":{}}`},
		{Name: "all", Cfg: `{"redis_lookup":{"timeout":"20ms","on_failure":401,"cache_ttl":"10s","negative_ttl":"0s","negative_size":0}}`},
		{Name: "no redis section", Build: &sdk.Build{Route: "r", Consumers: testConsumers()}, Cfg: `{"redis_lookup":{}}`,
			Err: "redis_lookup: needs the top-level redis section (redis: {addrs: [...]})"},
		{Name: "bad status", Cfg: `{"redis_lookup":{"on_failure":200}}`, Err: "redis_lookup.on_failure: must be 503 or 401, got 200"},
		{Name: "zero timeout", Cfg: `{"redis_lookup":{"timeout":"0s"}}`, Err: `redis_lookup.timeout: must be > 0, e.g. "50ms"`},
		{Name: "short cache", Cfg: `{"redis_lookup":{"cache_ttl":"10ms"}}`, Err: `redis_lookup.cache_ttl: must be at least "1s"`},
		{Name: "bad duration", Cfg: `{"redis_lookup":{"negative_ttl":"soon"}}`,
			Err: `redis_lookup.negative_ttl: invalid duration "soon": use a number with a unit such as "1s" or "250ms"`},
		{Name: "negative size", Cfg: `{"redis_lookup":{"negative_size":-1}}`, Err: "redis_lookup.negative_size: must be >= 0, got -1"},
		{Name: "unknown field", Cfg: `{"redis_lookup":{"ttl":"1s"}}`, Err: `unknown field "redis_lookup.ttl"`},
	})
}

func TestRedisKeyLayout(t *testing.T) {
	d := sha256.Sum256([]byte("k1"))
	if got, want := RedisKey([]byte("k1")), "weir:key_auth:"+hex.EncodeToString(d[:]); got != want {
		t.Fatalf("RedisKey = %q, want %q", got, want)
	}
}

func TestParseRedisCredential(t *testing.T) {
	d := sha256.Sum256([]byte("k1"))
	e, err := parseRedisCredential(`{"consumer":"bob","groups":["a","b"]}`, &d)
	if err != nil || e.consumer.Name != "bob" || e.consumer.GroupsHeader != "a,b" || e.id != "bob#"+hex.EncodeToString(d[:6]) {
		t.Fatalf("got %+v %v", e, err)
	}
	if e, err = parseRedisCredential(`{"consumer":"bob","id":"bob-ci"}`, &d); err != nil || e.id != "bob-ci" {
		t.Fatalf("id: %+v %v", e, err)
	}
	for _, bad := range []string{``, `{}`, `{"consumer":""}`, `[1]`, `{"consumer":1}`} {
		if _, err := parseRedisCredential(bad, &d); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// redisFilter is a filter with redis_lookup on a private redis-server,
// holding one credential for "redis-key".
func redisFilter(t testing.TB, cfg string) (*filter, *testredis.Server) {
	rs := testredis.Start(t)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr}, ForceSingleClient: true, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Do(context.Background(), c.B().Set().Key(RedisKey([]byte("redis-key"))).Value(`{"consumer":"bob","groups":["gold"]}`).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	b := &sdk.Build{Route: "r", Consumers: testConsumers(), Redis: c, RedisConfigured: true}
	return plugintest.New[*filter](t, New, b, cfg), rs
}

func onRequest(t testing.TB, f *filter, key string) (int, *sdk.Consumer) {
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/x")
	rc.Request.Header.Set("X-API-Key", key)
	c := sdk.AcquireCtx(&rc)
	defer sdk.ReleaseCtx(c)
	st, err := f.OnRequest(c)
	if err != nil {
		t.Fatal(err)
	}
	if st == sdk.Continue {
		return 200, c.Consumer()
	}
	return rc.Response.StatusCode(), nil
}

func TestRedisLookup(t *testing.T) {
	f, rs := redisFilter(t, `{"redis_lookup":{"timeout":"200ms"}}`)
	// The counters are the process's metrics, shared by every run.
	fetched0, cached0, malformed0 := f.redis.fetched.Get(), f.redis.cached.Get(), f.redis.malformed.Get()
	for range 3 {
		if code, cons := onRequest(t, f, "redis-key"); code != 200 || cons.Name != "bob" || cons.GroupsHeader != "gold" {
			t.Fatalf("key in Redis: %d %+v", code, cons)
		}
	}
	if fetched, cached := f.redis.fetched.Get()-fetched0, f.redis.cached.Get()-cached0; fetched != 1 || cached != 2 {
		t.Fatalf("fetched %d cached %d, want 1 and 2", fetched, cached)
	}
	if code, cons := onRequest(t, f, "alice-key-1"); code != 200 || cons.Name != "alice" {
		t.Fatalf("key in the config: %d %+v", code, cons)
	}
	if code, _ := onRequest(t, f, "nobody"); code != 401 {
		t.Fatalf("unknown key: %d", code)
	}
	if _, err := rs.Do("SET", RedisKey([]byte("broken")), "not json"); err != nil {
		t.Fatal(err)
	}
	if code, _ := onRequest(t, f, "broken"); code != 401 || f.redis.malformed.Get()-malformed0 != 1 {
		t.Fatalf("malformed value: %d, %d counted", code, f.redis.malformed.Get()-malformed0)
	}
	rs.Stop()
	if code, _ := onRequest(t, f, "other-key"); code != 503 {
		t.Fatalf("Redis down: %d", code)
	}
}

// TestRedisLookupCachedAllocs pins what a lookup served from the
// client-side cache allocates (see BenchmarkRedisLookupCached).
func TestRedisLookupCachedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	f, _ := redisFilter(t, `{"redis_lookup":{"timeout":"200ms"}}`)
	onRequest(t, f, "redis-key")
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/x")
	allocs := testing.AllocsPerRun(200, func() {
		rc.Request.Header.Set("X-API-Key", "redis-key")
		c := sdk.AcquireCtx(&rc)
		if st, _ := f.OnRequest(c); st != sdk.Continue {
			t.Fatal("refused")
		}
		sdk.ReleaseCtx(c)
	})
	t.Logf("%.1f allocations per cached lookup", allocs)
	if allocs > 10 {
		t.Fatalf("%.1f allocations per cached lookup, want <= 10 (the guard's goroutine, channel, context and timer; the Redis key)", allocs)
	}
}
