package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/sdk"
)

// testEntry encodes a response entry of bodyLen bytes kept until until.
func testEntry(t testing.TB, bodyLen int, until int64, tags string) []byte {
	t.Helper()
	m := entryMeta{kind: kindResponse, status: 200, storeUntil: until, lifetime: int64(time.Hour)}
	enc, err := encodeEntry(nil, &m, nil, nil, nil, []byte(tags), []byte("HTTP/1.1 200 OK\r\n\r\n"), make([]byte, bodyLen))
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

const far = int64(1) << 62

func TestMemoryStoreBoundedByMaxBytes(t *testing.T) {
	const maxBytes = 256 << 10
	s := newMemoryStore(maxBytes, 4<<10)
	for i := 0; i < 2000; i++ {
		_ = s.set([]byte(fmt.Sprintf("host/obj/%d", i)), testEntry(t, 1000, far, ""), 0, nil)
		if b := s.bytes(); b > maxBytes {
			t.Fatalf("after %d inserts the store holds %d bytes > max_bytes %d", i+1, b, maxBytes)
		}
	}
	if n := s.len(); n == 0 || n >= 2000 {
		t.Fatalf("store holds %d objects", n)
	}
	// The most recent insert is there.
	if _, ok := s.get([]byte("host/obj/1999"), 0, nil); !ok {
		t.Fatal("newest object evicted")
	}
}

func TestMemoryStoreSecondChance(t *testing.T) {
	s := newMemoryStore(16<<10, 4<<10) // one shard
	if len(s.shards) != 1 {
		t.Fatalf("%d shards", len(s.shards))
	}
	hot := []byte("host/hot")
	_ = s.set(hot, testEntry(t, 500, far, ""), 0, nil)
	for i := 0; i < 200; i++ {
		if _, ok := s.get(hot, 0, nil); !ok {
			t.Fatalf("hot object evicted after %d inserts", i)
		}
		_ = s.set([]byte(fmt.Sprintf("host/cold/%d", i)), testEntry(t, 500, far, ""), 0, nil)
	}
}

func TestMemoryStoreExpiryAndOversize(t *testing.T) {
	s := newMemoryStore(64<<10, 8<<10)
	_ = s.set([]byte("k"), testEntry(t, 10, 100, ""), 0, nil)
	if _, ok := s.get([]byte("k"), 100, nil); !ok {
		t.Fatal("entry missing before storeUntil")
	}
	if _, ok := s.get([]byte("k"), 101, nil); ok {
		t.Fatal("entry served after storeUntil")
	}
	_ = s.set([]byte("big"), testEntry(t, 65<<10, far, ""), 0, nil)
	if _, ok := s.get([]byte("big"), 0, nil); ok {
		t.Fatal("object larger than the store was kept")
	}
	s.setLimit(0)
	_ = s.set([]byte("k2"), testEntry(t, 10, far, ""), 0, nil)
	if s.len() != 1 {
		// k is still there (no insert walked its shard past the limit), k2 was refused.
		t.Logf("len %d", s.len())
	}
	if _, ok := s.get([]byte("k2"), 0, nil); ok {
		t.Fatal("insert accepted with a zero limit")
	}
}

// storeContract runs the same checks against any store.
func storeContract(t *testing.T, s store) {
	now := time.Now().UnixNano()
	until := now + int64(time.Hour)
	keys := []string{"api.example.com/a", "api.example.com/a?x=1", "api.example.com/ab", "api.example.com/b", "other.example.com/a"}
	for i, k := range keys {
		tags := ""
		if i%2 == 0 {
			tags = "even all"
		} else {
			tags = "odd all"
		}
		if err := s.set([]byte(k), testEntry(t, 10+i, until, tags), now, nil); err != nil {
			t.Fatalf("%s: set: %v", s.name(), err)
		}
	}
	for i, k := range keys {
		e, ok := s.get([]byte(k), now, nil)
		if !ok || len(e.body()) != 10+i {
			t.Fatalf("%s: get %s: %v", s.name(), k, ok)
		}
	}
	if _, ok := s.get([]byte("api.example.com/none"), now, nil); ok {
		t.Fatalf("%s: phantom entry", s.name())
	}
	if !s.del([]byte(keys[3])) || s.del([]byte(keys[3])) {
		t.Fatalf("%s: del", s.name())
	}
	if n := s.purgePrefix([]byte("api.example.com/a")); n != 3 {
		t.Fatalf("%s: purgePrefix removed %d, want 3", s.name(), n)
	}
	if _, ok := s.get([]byte(keys[4]), now, nil); !ok {
		t.Fatalf("%s: prefix purge reached another host", s.name())
	}
	if n := s.purgeTag([]byte("even")); n != 1 {
		t.Fatalf("%s: purgeTag removed %d, want 1 (other.example.com/a)", s.name(), n)
	}
	if n := s.purgeTag([]byte("all")); n != 0 {
		t.Fatalf("%s: purgeTag on emptied tag removed %d", s.name(), n)
	}
	// Glob characters in a prefix are literal.
	_ = s.set([]byte("h/[x]*?"), testEntry(t, 1, until, ""), now, nil)
	_ = s.set([]byte("h/[x]y"), testEntry(t, 1, until, ""), now, nil)
	if n := s.purgePrefix([]byte("h/[x]*")); n != 1 {
		t.Fatalf("%s: glob prefix removed %d, want 1", s.name(), n)
	}
}

func TestMemoryStoreContract(t *testing.T) {
	storeContract(t, newMemoryStore(1<<20, 1<<10))
}

func newRedisClient(t testing.TB, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRedisStoreContract(t *testing.T) {
	srv := testredis.Start(t)
	storeContract(t, newRedisStore(newRedisClient(t, srv.Addr), time.Second))
}

func TestRedisStoreTwoNodesSeeEachOther(t *testing.T) {
	srv := testredis.Start(t)
	a := newRedisStore(newRedisClient(t, srv.Addr), time.Second)
	b := newRedisStore(newRedisClient(t, srv.Addr), time.Second)
	now := time.Now().UnixNano()
	key := []byte("api.example.com/shared")
	_ = a.set(key, testEntry(t, 5, now+int64(time.Hour), "t1"), now, nil)
	// Node b reads it twice: the second read is served from its
	// client-side cache.
	for i := 0; i < 2; i++ {
		if _, ok := b.get(key, now, nil); !ok {
			t.Fatalf("node b does not see node a's object (read %d)", i)
		}
	}
	ctx := context.Background()
	if !b.c.DoCache(ctx, b.c.B().Get().Key(redisObjPrefix+string(key)).Cache(), time.Minute).IsCacheHit() {
		t.Fatal("node b did not cache the object client-side")
	}
	// A purge on node a reaches node b's local copy through Redis'
	// invalidation push.
	if n := a.purgeTag([]byte("t1")); n != 1 {
		t.Fatalf("purgeTag = %d", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, ok := b.get(key, now, nil); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node b still serves the purged object")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedisStoreTTL(t *testing.T) {
	srv := testredis.Start(t)
	c := newRedisClient(t, srv.Addr)
	s := newRedisStore(c, time.Second)
	now := time.Now().UnixNano()
	_ = s.set([]byte("k"), testEntry(t, 1, now+int64(90*time.Second), "tag"), now, nil)
	ttl, err := c.Do(context.Background(), c.B().Pttl().Key(redisObjPrefix+"k").Build()).AsInt64()
	if err != nil || ttl < 89_000 || ttl > 90_000 {
		t.Fatalf("object PTTL %d (%v), want ~90s", ttl, err)
	}
	ttl, _ = c.Do(context.Background(), c.B().Pttl().Key(redisTagPrefix+"tag").Build()).AsInt64()
	if ttl < 89_000 || ttl > 90_000 {
		t.Fatalf("tag set PTTL %d", ttl)
	}
	// An already expired entry is not written.
	_ = s.set([]byte("old"), testEntry(t, 1, now-1, ""), now, nil)
	if n, _ := c.Do(context.Background(), c.B().Exists().Key(redisObjPrefix+"old").Build()).AsInt64(); n != 0 {
		t.Fatal("expired entry written")
	}
	// A corrupt value is a miss, not a crash.
	_ = c.Do(context.Background(), c.B().Set().Key(redisObjPrefix+"bad").Value("garbage").Build()).Error()
	if _, ok := s.get([]byte("bad"), now, nil); ok {
		t.Fatal("corrupt value served")
	}
}

func TestRedisStoreDownIsAMiss(t *testing.T) {
	srv := testredis.Start(t)
	f, _ := newTestFilterRedis(t, `{"store":"redis","redis_timeout":"100ms"}`, newRedisClient(t, srv.Addr))
	srv.Stop()
	o := &counting{fn: fixed(200, "x", "Cache-Control: max-age=60")}
	for i := 0; i < 2; i++ {
		r := do(t, f, req{url: u}, o.origin)
		if r.status != 200 || r.body != "x" {
			t.Fatalf("request with Redis down: %d %q", r.status, r.body)
		}
	}
	srv.Restart()
}

func TestFilterOnRedisTwoNodes(t *testing.T) {
	srv := testredis.Start(t)
	cfg := `{"store":"redis","tag_header":"Surrogate-Key"}`
	a, _ := newTestFilterRedis(t, cfg, newRedisClient(t, srv.Addr))
	b, _ := newTestFilterRedis(t, cfg, newRedisClient(t, srv.Addr))
	// Same clock on both nodes.
	b.now = a.now
	o := &counting{fn: fixed(200, "from origin", "Cache-Control: max-age=600", "Surrogate-Key: users user-7", "Vary: Accept-Encoding")}
	wantX(t, do(t, a, req{url: u, hdr: []string{"Accept-Encoding: gzip"}}, o.origin), "MISS")
	r := do(t, b, req{url: u, hdr: []string{"Accept-Encoding: gzip"}}, o.origin)
	wantX(t, r, "HIT")
	if r.body != "from origin" {
		t.Fatalf("node b body %q", r.body)
	}
	wantX(t, do(t, b, req{url: u, hdr: []string{"Accept-Encoding: gzip"}}, o.origin), "HIT")

	// A tag purge on one node reaches the other.
	n, err := PurgeTag("user-7")
	if err != nil || n < 1 {
		t.Fatalf("PurgeTag: %d %v", n, err)
	}
	waitMiss(t, b, req{url: u, hdr: []string{"Accept-Encoding: gzip"}}, o)

	// So do URL and prefix purges.
	do(t, a, req{url: u, hdr: []string{"Accept-Encoding: gzip"}}, o.origin)
	if _, err := Purge("https://api.example.com/items/1"); err != nil {
		t.Fatal(err)
	}
	waitMiss(t, b, req{url: u, hdr: []string{"Accept-Encoding: gzip"}}, o)
	do(t, a, req{url: u, hdr: []string{"Accept-Encoding: gzip"}}, o.origin)
	if n, err := PurgePrefix("http://api.example.com/items/"); err != nil || n < 1 {
		t.Fatalf("PurgePrefix: %d %v", n, err)
	}
	waitMiss(t, b, req{url: u, hdr: []string{"Accept-Encoding: gzip"}}, o)
}

// waitMiss polls until f no longer answers q from the cache (an
// invalidation push is asynchronous) and leaves the response stored
// again.
func waitMiss(t *testing.T, f *Filter, q req, o *counting) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		r := do(t, f, q, o.origin)
		if r.upstream {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("purged object still served")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPurgeReachesMemoryStoresOnOtherNodes(t *testing.T) {
	srv := testredis.Start(t)
	f, _ := newTestFilterRedis(t, `{}`, newRedisClient(t, srv.Addr)) // memory store, Redis for pub/sub
	do(t, f, req{url: u}, fixed(200, "x", "Cache-Control: max-age=600"))
	wantX(t, do(t, f, req{url: u}, nil), "HIT")
	// Another node publishes a purge.
	other := newRedisClient(t, srv.Addr)
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Second)
	for {
		// The subscription starts asynchronously: publish until it lands.
		_ = other.Do(ctx, other.B().Publish().Channel(purgeChannel).Message("othernode u api.example.com/items/1").Build()).Error()
		time.Sleep(20 * time.Millisecond)
		if r := do(t, f, req{url: u}, fixed(200, "y", "Cache-Control: max-age=600")); r.upstream {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("remote purge not applied")
		}
	}
	// Our own messages are ignored, malformed ones too.
	for _, msg := range []string{"", "x", "node z api.example.com/items/1", "node"} {
		applyRemotePurge("self", msg)
	}
	wantX(t, do(t, f, req{url: u}, nil), "HIT")
}

func TestPurgeAPI(t *testing.T) {
	f, _ := newTestFilter(t, `{"tag_header":"Surrogate-Key"}`)
	store := func(url, tags string) {
		do(t, f, req{url: url}, fixed(200, "x", "Cache-Control: max-age=600", "Surrogate-Key: "+tags))
	}
	cached := func(url string) bool {
		return !do(t, f, req{url: url}, fixed(200, "x", "Cache-Control: max-age=600")).upstream
	}
	store("http://shop.example.com/p/1", "product p1")
	store("http://shop.example.com/p/2", "product p2")
	store("http://shop.example.com/c/1", "category")
	if n, err := PurgeTag("p1"); err != nil || n != 1 {
		t.Fatalf("PurgeTag p1: %d %v", n, err)
	}
	if cached("http://shop.example.com/p/1") {
		t.Fatal("p1 survived its tag purge")
	}
	store("http://shop.example.com/p/1", "product p1")
	if n, _ := PurgePrefix("https://shop.example.com/p/"); n != 2 {
		t.Fatalf("PurgePrefix removed %d, want 2", n)
	}
	if cached("http://shop.example.com/p/2") || !cached("http://shop.example.com/c/1") {
		t.Fatal("prefix purge removed the wrong objects")
	}
	if n, _ := Purge("https://SHOP.example.com/c/./1"); n != 1 {
		t.Fatalf("Purge removed %d, want 1", n)
	}
	for _, bad := range []func() error{
		func() error { _, err := Purge("/c/1"); return err },
		func() error { _, err := PurgePrefix(""); return err },
		func() error { _, err := PurgeTag("two tags"); return err },
		func() error { _, err := PurgeTag(""); return err },
	} {
		if err := bad(); err == nil {
			t.Error("bad purge accepted")
		} else if !strings.HasPrefix(err.Error(), "cache: ") {
			t.Errorf("error %q does not name the plugin", err)
		}
	}
}

func TestScopeSurvivesReload(t *testing.T) {
	b := "reload-" + fmt.Sprint(time.Now().UnixNano())
	mk := func(cfg string) *Filter {
		f, err := New(&sdk.Build{Route: b}, []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		return f.(*Filter)
	}
	old := mk(`{}`)
	_ = old.Start()
	do(t, old, req{url: u}, fixed(200, "x", "Cache-Control: max-age=600"))
	// The next snapshot's instance starts before the old one closes and
	// adopts its objects.
	next := mk(`{"max_bytes":"32MiB"}`)
	_ = next.Start()
	_ = old.Close()
	wantX(t, do(t, next, req{url: u}, nil), "HIT")
	if next.scope.Load().mem.maxBytes.Load() != 32<<20 {
		t.Fatal("new max_bytes not applied to the adopted store")
	}
	_ = next.Close()
	// The last instance gone, the scope is gone too.
	registry.mu.Lock()
	_, still := registry.scopes["memory|"+b]
	registry.mu.Unlock()
	if still {
		t.Fatal("scope outlived its last instance")
	}
	// An instance that never started (weir validate) registers nothing.
	mk(`{}`)
	registry.mu.Lock()
	_, still = registry.scopes["memory|"+b]
	registry.mu.Unlock()
	if still {
		t.Fatal("New registered a scope")
	}
}

func TestHandlePurge(t *testing.T) {
	f, _ := newTestFilter(t, `{"tag_header":"Surrogate-Key"}`)
	do(t, f, req{url: "http://admin.example.com/a"}, fixed(200, "x", "Cache-Control: max-age=600", "Surrogate-Key: k"))
	do(t, f, req{url: "http://admin.example.com/b"}, fixed(200, "x", "Cache-Control: max-age=600"))
	do(t, f, req{url: "http://admin.example.com/c"}, fixed(200, "x", "Cache-Control: max-age=600"))
	for _, tc := range []struct {
		body   string
		status int
		resp   string
	}{
		{`{"tag":"k"}`, 200, `{"purged":1}`},
		{`{"url":"https://admin.example.com/b"}`, 200, `{"purged":1}`},
		{`{"prefix":"admin.example.com/"}`, 200, `{"purged":1}`},
		{`{"prefix":"admin.example.com/"}`, 200, `{"purged":0}`},
		{`{"url":"/relative"}`, 400, `{"status":400,"error":"cache: purge needs an absolute URL such as https://api.example.com/users/7"}`},
		{`{"url":"http://a/x","tag":"t"}`, 400, `{"status":400,"error":"cache purge: give exactly one of url, prefix or tag"}`},
		{`{}`, 400, `{"status":400,"error":"cache purge: give exactly one of url, prefix or tag"}`},
		{`{"host":"x"}`, 400, `{"status":400,"error":"cache purge: body must be {\"url\"|\"prefix\"|\"tag\": \"...\"}"}`},
		{`not json`, 400, `{"status":400,"error":"cache purge: body must be {\"url\"|\"prefix\"|\"tag\": \"...\"}"}`},
	} {
		st, body := HandlePurge([]byte(tc.body))
		if st != tc.status || string(body) != tc.resp {
			t.Errorf("%s: %d %s, want %d %s", tc.body, st, body, tc.status, tc.resp)
		}
	}
}
