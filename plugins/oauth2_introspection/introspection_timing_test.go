package oauth2introspection

import (
	"strconv"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/sdk"
)

// BenchmarkMemoryHit: a cached token (the steady state).
func BenchmarkMemoryHit(b *testing.B) {
	p := newIDP(b)
	p.set("tok-hot", active("alice", "read write", time.Now().Add(time.Hour)))
	f := newFilter(b, &sdk.Build{Consumers: consumersOf(consumer("alice"))}, cfgFor(p, ""))
	benchHits(b, f, "tok-hot")
}

// BenchmarkIntrospectionCall: every request a new token, so each one is a
// loopback introspection round trip (the cost of a miss).
func BenchmarkIntrospectionCall(b *testing.B) {
	p := newIDP(b)
	f := newFilter(b, nil, cfgFor(p, `,"cache_size":0`))
	benchMisses(b, f)
}

// BenchmarkRedisHit: the memory cache is off, Redis answers.
func BenchmarkRedisHit(b *testing.B) {
	srv := testredis.Start(b)
	p := newIDP(b)
	p.set("tok-hot", active("alice", "read write", time.Now().Add(time.Hour)))
	f := newFilter(b, &sdk.Build{Redis: redisClientB(b, srv.Addr)}, cfgFor(p, `,"cache_size":0`))
	benchHits(b, f, "tok-hot")
	if p.callsFor("tok-hot") != 1 {
		b.Fatal("redis did not answer")
	}
}

// benchHits measures requests presenting tok once the first one has
// cached it.
func benchHits(b *testing.B, f *filter, tok string) {
	rc, c := newCtx("http://gw.test/api", map[string]string{"Authorization": "Bearer " + tok})
	f.OnRequest(c)
	sdk.ReleaseCtx(c)
	b.ReportAllocs()
	for b.Loop() {
		c := sdk.AcquireCtx(rc)
		if st, _ := f.OnRequest(c); st != sdk.Continue {
			b.Fatal("refused")
		}
		sdk.ReleaseCtx(c)
	}
}

func benchMisses(b *testing.B, f *filter) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		rc, c := newCtx("http://gw.test/api", map[string]string{"Authorization": "Bearer t" + strconv.Itoa(i)})
		if st, _ := f.OnRequest(c); st != sdk.Stop || rc.Response.StatusCode() != 401 {
			b.Fatal("unknown token not refused as inactive")
		}
		sdk.ReleaseCtx(c)
	}
}
