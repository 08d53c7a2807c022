package oauth2introspection

import (
	"github.com/weirgw/weir/plugins/internal/ttlcache"
	"github.com/weirgw/weir/sdk"
)

// entry is what a cached introspection grants, built once per answer and
// shared read-only by every request presenting the same token.
type entry struct {
	active   bool
	consumer *sdk.Consumer
	// sub, clientID and ix are what consumer was matched from, and the
	// consumer index it was matched with (filter.consumerOf).
	sub, clientID string
	ix            *consumerIndex
	credential    string
	scopes        []string
	// scopesOK says whether scopes include every required scope.
	scopesOK bool
	// until (unix milliseconds) is when the answer stops being trusted.
	until int64
}

// memCache maps SHA-256(token) to entries. It is bounded: a full shard
// first drops expired entries among a few random ones, else one of them
// (package ttlcache).
type memCache struct {
	c *ttlcache.Cache[[32]byte, *entry]
}

// newMemCache returns a cache of at most size entries, or nil (no cache).
func newMemCache(size int) *memCache {
	if size <= 0 {
		return nil
	}
	return &memCache{c: ttlcache.New[[32]byte, *entry](size)}
}

// The key is a SHA-256 digest, so its first byte picks a shard uniformly.
func (mc *memCache) get(key *[32]byte, nowMs int64) *entry {
	e, _ := mc.c.Get(key[0], *key, nowMs)
	return e
}

// put caches e until e.until; an answer already stale is not stored.
func (mc *memCache) put(key *[32]byte, e *entry, nowMs int64) {
	if nowMs >= e.until {
		return
	}
	mc.c.Put(key[0], *key, e, e.until, nowMs)
}

func (mc *memCache) len() int { return mc.c.Len() }
