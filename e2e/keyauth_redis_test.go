package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/testredis"
)

const keyAuthRedisCfg = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
redis: {addrs: ["REDIS"]}
services: [{name: a, targets: [{url: "http://UP"}]}]
consumers:
  - {name: alice, credentials: {key_auth: [{key: "file-key-1"}]}}
routes:
  - name: strict
    paths: ["/strict"]
    service: a
    plugins: [{name: key_auth, config: {hide_credentials: true, redis_lookup: {timeout: 100ms, cache_ttl: 1m, negative_ttl: 300ms}}}]
  - name: lenient
    paths: ["/lenient"]
    service: a
    plugins: [{name: key_auth, config: {redis_lookup: {timeout: 100ms, on_failure: 401}}}]
`

// redisKeyOf is the documented layout: weir:key_auth:<hex SHA-256 of the key>.
func redisKeyOf(apiKey string) string {
	d := sha256.Sum256([]byte(apiKey))
	return "weir:key_auth:" + hex.EncodeToString(d[:])
}

// TestKeyAuthRedisLookup: a consumer kept only in Redis (written with
// redis-cli, or with weir key-auth) authenticates, its
// later requests are served from the client-side cache, deleting it in
// Redis revokes it on the next request (invalidation, not the cache's
// TTL), an unknown key is 401, and with Redis stopped a key Redis would
// have to answer is refused with on_failure's status within the timeout
// while a key from the file still works.
func TestKeyAuthRedisLookup(t *testing.T) {
	rs := testredis.Start(t)
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "REDIS", rs.Addr).Replace(keyAuthRedisCfg))
	c := newClient(w.Addr)
	_, port, _ := net.SplitHostPort(rs.Addr)
	// set writes a credential with the key_auth README's recipe, as an
	// operator would: redis-cli and sha256sum.
	set := func(apiKey, val string) {
		t.Helper()
		cmd := exec.Command("sh", "-c", `redis-cli -p "$PORT" SET "weir:key_auth:$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" "$VALUE"`)
		cmd.Env = append(os.Environ(), "PORT="+port, "KEY="+apiKey, "VALUE="+val)
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "OK" {
			t.Fatalf("redis-cli SET: %q %v", out, err)
		}
		if r, err := rs.Do("EXISTS", redisKeyOf(apiKey)); err != nil || r != ":1" {
			t.Fatalf("the recipe did not write %s: %q %v", redisKeyOf(apiKey), r, err)
		}
	}
	consumerOf := func(body string) (string, string, string) {
		var r struct {
			Headers map[string]string `json:"headers"`
		}
		_ = json.Unmarshal([]byte(body), &r)
		return r.Headers["X-Consumer-Name"], r.Headers["X-Consumer-Groups"], r.Headers["X-Api-Key"]
	}

	set("redis-key-1", `{"consumer":"bob","groups":["gold","beta"]}`)
	for i := range 5 {
		code, body, _ := get(t, c, "/strict", map[string]string{"X-API-Key": "redis-key-1"})
		name, groups, leaked := consumerOf(body)
		if code != 200 || name != "bob" || groups != "gold,beta" || leaked != "" {
			t.Fatalf("request %d with a key kept in Redis: %d, consumer %q groups %q key upstream %q: %s", i, code, name, groups, leaked, body)
		}
	}
	cached := w.metric(`weir_key_auth_redis_lookups_total{route="strict",result="cached"}`)
	fetched := w.metric(`weir_key_auth_redis_lookups_total{route="strict",result="fetched"}`)
	t.Logf("5 requests: %v fetched from Redis, %v from the client-side cache", fetched, cached)
	if fetched != 1 || cached != 4 {
		t.Fatalf("want 1 fetched and 4 cached, got %v and %v", fetched, cached)
	}

	if code, body, _ := get(t, c, "/strict", map[string]string{"X-API-Key": "file-key-1"}); code != 200 {
		t.Fatalf("key from the file: %d %s", code, body)
	}
	if code, body, h := get(t, c, "/strict", map[string]string{"X-API-Key": "nobody"}); code != 401 || len(h.Peek("WWW-Authenticate")) == 0 {
		t.Fatalf("unknown key: %d %s", code, body)
	}
	// The negative cache answers a repeat without Redis.
	get(t, c, "/strict", map[string]string{"X-API-Key": "nobody"})
	if n := w.metric(`weir_key_auth_redis_lookups_total{route="strict",result="negative"}`); n < 1 {
		t.Fatalf("negative cache not used: %v", n)
	}

	// Revoked: the cache holds bob for a minute, Redis's invalidation
	// must end it at once.
	if r, err := rs.Do("DEL", redisKeyOf("redis-key-1")); err != nil || r != ":1" {
		t.Fatalf("DEL: %q %v", r, err)
	}
	until(t, c, "redis-key-1", 401, 2*time.Second, "revoked key, after DEL")

	// A key added to Redis works once the negative entry (300ms) ends.
	set("redis-key-2", `{"consumer":"carol"}`)
	time.Sleep(400 * time.Millisecond)
	if code, body, _ := get(t, c, "/strict", map[string]string{"X-API-Key": "redis-key-2"}); code != 200 {
		t.Fatalf("new key: %d %s", code, body)
	} else if name, groups, _ := consumerOf(body); name != "carol" || groups != "" {
		t.Fatalf("new key: consumer %q groups %q", name, groups)
	}

	// The same with `weir key-auth`, the key on standard input.
	cli := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(weirBin, append([]string{"key-auth"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("weir key-auth %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := cli("cli-key-1\n", "put", "-c", w.File, "--consumer", "erin", "--groups", "ops,dev"); !strings.Contains(out, redisKeyOf("cli-key-1")) {
		t.Fatalf("weir key-auth put: %s", out)
	}
	if code, body, _ := get(t, c, "/strict", map[string]string{"X-API-Key": "cli-key-1"}); code != 200 {
		t.Fatalf("key written by weir key-auth: %d %s", code, body)
	} else if name, groups, _ := consumerOf(body); name != "erin" || groups != "ops,dev" {
		t.Fatalf("key written by weir key-auth: consumer %q groups %q", name, groups)
	}
	cli("cli-key-1", "delete", "-c", w.File)
	until(t, c, "cli-key-1", 401, 2*time.Second, "key deleted by weir key-auth")

	// Redis hung (SIGSTOP): a cached key needs no round trip and still
	// works; a key Redis has to answer is refused within the timeout.
	set("redis-key-3", `{"consumer":"dave"}`)
	rs.Pause()
	if code, body, _ := get(t, c, "/strict", map[string]string{"X-API-Key": "redis-key-2"}); code != 200 {
		t.Fatalf("cached key with Redis hung: %d %s", code, body)
	}
	start := time.Now()
	code, body, _ := get(t, c, "/strict", map[string]string{"X-API-Key": "redis-key-3"})
	took := time.Since(start)
	t.Logf("Redis hung, uncached key: %d in %v", code, took)
	if code != 503 || took < 90*time.Millisecond || took > 600*time.Millisecond {
		t.Fatalf("Redis hung, uncached key: %d in %v, want 503 after the 100ms timeout: %s", code, took, body)
	}
	rs.Resume()

	// Redis down: never admitted; on_failure's status within the bound.
	// A key cached on the node is served until the node sees its
	// connection close (no invalidation can arrive after that, so the
	// client-side cache is dropped then); allow that a second.
	rs.Stop()
	until(t, c, "redis-key-2", 503, time.Second, "cached key, Redis stopped")
	for _, tc := range []struct {
		path, key string
		want      int
	}{{"/strict", "redis-key-2", 503}, {"/lenient", "redis-key-3", 401}, {"/strict", "never-seen", 503}} {
		start := time.Now()
		code, body, _ := get(t, c, tc.path, map[string]string{"X-API-Key": tc.key})
		took := time.Since(start)
		t.Logf("Redis stopped, %s: %d in %v", tc.path, code, took)
		if code != tc.want {
			t.Fatalf("Redis stopped, %s %s: %d, want %d: %s", tc.path, tc.key, code, tc.want, body)
		}
		// timeout 100ms; the rest is a loaded 2-core machine.
		if took > 600*time.Millisecond {
			t.Fatalf("Redis stopped, %s: answered in %v, bound 100ms", tc.path, took)
		}
	}
	if code, body, _ := get(t, c, "/strict", map[string]string{"X-API-Key": "file-key-1"}); code != 200 {
		t.Fatalf("key from the file with Redis down: %d %s", code, body)
	}
	if n := w.metric(`weir_key_auth_redis_lookups_total{route="strict",result="failed"}`); n < 1 {
		t.Fatalf("failed lookups not counted: %v", n)
	}
}

// until sends key to /strict until the answer is want, failing on any
// answer but want or 200, or after within.
func until(t *testing.T, c *fasthttp.HostClient, key string, want int, within time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body, _ := get(t, c, "/strict", map[string]string{"X-API-Key": key})
		if code == want {
			return
		}
		if code != 200 || time.Now().After(deadline) {
			t.Fatalf("%s: still %d after %v, want %d: %s", what, code, within, want, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
