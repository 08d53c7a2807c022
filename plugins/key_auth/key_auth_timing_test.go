package keyauth

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// benchmarkOnRequest measures one request: a fresh Ctx from the pool and,
// when set, the key restored (hide_credentials removes it).
func benchmarkOnRequest(b *testing.B, f *filter, uri, header string) {
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI(uri)
	b.ReportAllocs()
	for b.Loop() {
		if header != "" {
			rc.Request.Header.Set("X-API-Key", header)
		}
		if f.hide {
			rc.Request.SetRequestURI(uri)
		}
		c := sdk.AcquireCtx(&rc)
		if _, err := f.OnRequest(c); err != nil {
			b.Fatal(err)
		}
		sdk.ReleaseCtx(c)
	}
}

func BenchmarkHeaderKey(b *testing.B) {
	benchmarkOnRequest(b, mustNew(b, "bench", ``), "/x", "alice-key-1")
}

func BenchmarkQueryKey(b *testing.B) {
	benchmarkOnRequest(b, mustNew(b, "bench", ``), "/x?a=1&apikey=bob-key", "")
}

func BenchmarkHideCredentials(b *testing.B) {
	benchmarkOnRequest(b, mustNew(b, "bench", `{"hide_credentials":true}`), "/x?a=1&apikey=bob-key", "")
}

func BenchmarkInvalidKey(b *testing.B) {
	benchmarkOnRequest(b, mustNew(b, "bench", ``), "/x", "not-a-key")
}

// BenchmarkManyConsumers shows the lookup does not grow with the number of
// keys (one map probe on the digest).
func BenchmarkManyConsumers(b *testing.B) {
	var list []*sdk.Consumer
	for i := range 10000 {
		list = append(list, consumer(fmt.Sprintf("c%d", i), fmt.Sprintf(`{"key":"key-%d-0123456789abcdef"}`, i)))
	}
	f, err := New(&sdk.Build{Route: "bench", Consumers: sdk.NewConsumers(list)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkOnRequest(b, f.(*filter), "/x", "key-4242-0123456789abcdef")
}

// BenchmarkRedisLookupCached is a key kept only in Redis, in the steady
// state: every lookup is a hit of rueidis' client-side cache, no round
// trip.
func BenchmarkRedisLookupCached(b *testing.B) {
	f, _ := redisFilter(b, `{"redis_lookup":{"timeout":"200ms"}}`)
	// The counters are the process's metrics, shared by every run.
	before := f.redis.fetched.Get()
	benchmarkOnRequest(b, f, "/x", "redis-key")
	if n := f.redis.fetched.Get() - before; n != 1 {
		b.Fatalf("%d lookups went to Redis, want 1", n)
	}
}
