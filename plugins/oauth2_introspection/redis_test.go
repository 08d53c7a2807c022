package oauth2introspection

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func redisClient(t *testing.T, addr string) rueidis.Client { return redisClientB(t, addr) }

func redisClientB(t testing.TB, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("connect to test redis: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestRedisSharedCache: two plugin instances (two gateway nodes) share
// answers through Redis: the second never calls the server. Keys are
// SHA-256 digests under weir:introspect:, values never hold the token, and
// the TTL ends at the token's exp.
func TestRedisSharedCache(t *testing.T) {
	srv := testredis.Start(t)
	rdb := redisClient(t, srv.Addr)
	p := newIDP(t)
	exp := time.Now().Add(30 * time.Second)
	const tok = "shared-token-value-123"
	p.set(tok, active("alice", "read", exp))
	alice := consumer("alice")
	cs := consumersOf(alice)
	a := newFilter(t, &sdk.Build{Redis: rdb, Consumers: cs}, cfgFor(p, ""))
	b := newFilter(t, &sdk.Build{Redis: rdb, Consumers: cs}, cfgFor(p, ""))

	plugintest.WantAccepted(t, run(t, a, tok))
	r := run(t, b, tok)
	plugintest.WantAccepted(t, r)
	if r.Consumer != alice || r.Credential != "alice" || len(r.Scopes) != 1 {
		t.Fatalf("identity from the shared cache: %v %q %q", r.Consumer, r.Credential, r.Scopes)
	}
	if n := p.callsFor(tok); n != 1 {
		t.Fatalf("two instances made %d introspection calls, want 1", n)
	}
	if b.hitRedis.Get() == 0 {
		t.Fatal("second instance did not count a redis hit")
	}

	ctx := context.Background()
	keys, err := rdb.Do(ctx, rdb.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok))
	want := "weir:introspect:" + hex.EncodeToString(sum[:])
	if len(keys) != 1 || keys[0] != want {
		t.Fatalf("redis keys %q, want [%s]", keys, want)
	}
	val, err := rdb.Do(ctx, rdb.B().Get().Key(want).Build()).ToString()
	if err != nil || strings.Contains(val, tok) {
		t.Fatalf("value %q (err %v) must exist and not contain the token", val, err)
	}
	pttl, err := rdb.Do(ctx, rdb.B().Pttl().Key(want).Build()).AsInt64()
	if err != nil || pttl <= 0 || pttl > time.Until(exp).Milliseconds()+1000 {
		t.Fatalf("PTTL %d (err %v), want > 0 and ending at exp", pttl, err)
	}

	// Inactive answers are shared for negative_ttl.
	plugintest.WantRefused(t, run(t, a, "revoked-token"), 401, "not active")
	plugintest.WantRefused(t, run(t, b, "revoked-token"), 401, "not active")
	if n := p.callsFor("revoked-token"); n != 1 {
		t.Fatalf("inactive answer not shared: %d calls", n)
	}
}

// TestRedisDownFallsBack: with Redis gone, requests are still answered
// from the introspection server (and the memory cache).
func TestRedisDownFallsBack(t *testing.T) {
	srv := testredis.Start(t)
	rdb := redisClient(t, srv.Addr)
	p := newIDP(t)
	p.set("tok-1", active("u", "", time.Now().Add(time.Hour)))
	p.set("tok-2", active("u", "", time.Now().Add(time.Hour)))
	f := newFilter(t, &sdk.Build{Redis: rdb}, cfgFor(p, `,"redis_timeout":"100ms"`))
	plugintest.WantAccepted(t, run(t, f, "tok-1"))
	srv.Stop()
	start := time.Now()
	plugintest.WantAccepted(t, run(t, f, "tok-2"))
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a dead redis cost %s", d)
	}
	if f.redisErr.Get() == 0 {
		t.Fatal("redis errors not counted")
	}
	plugintest.WantAccepted(t, run(t, f, "tok-1")) // memory cache
	if n := p.callsFor("tok-2"); n != 1 {
		t.Fatalf("tok-2 calls %d", n)
	}
}

// TestRedisGarbageValueIsAMiss: an unreadable Redis value is ignored.
func TestRedisGarbageValueIsAMiss(t *testing.T) {
	srv := testredis.Start(t)
	rdb := redisClient(t, srv.Addr)
	p := newIDP(t)
	const tok = "tok-x"
	p.set(tok, map[string]any{"active": false})
	sum := sha256.Sum256([]byte(tok))
	if _, err := srv.Do("SET", redisPrefix+hex.EncodeToString(sum[:]), `{"a":true,"u":99999999999999}x`); err != nil {
		t.Fatal(err)
	}
	f := newFilter(t, &sdk.Build{Redis: rdb}, cfgFor(p, ""))
	plugintest.WantRefused(t, run(t, f, tok), 401, "not active")
	if n := p.callsFor(tok); n != 1 {
		t.Fatalf("calls %d", n)
	}
}
