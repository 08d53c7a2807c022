package jwt

import (
	"github.com/weirgw/weir/sdk"
	"sync"
)

// identity is what a verified token grants: computed once per token and
// shared read-only by every request that presents the same token while it
// is cached. Its strings are owned by the identity (never views into a
// request).
type identity struct {
	consumer   *sdk.Consumer
	credential string
	scopes     []string
	// headerVals are the claims_to_headers values, aligned with
	// filter.claimHeaders; "" means the claim is absent.
	headerVals []string
	// validUntil (unix nanoseconds) is when the cache must stop trusting
	// this result: the token's exp plus clock_skew, or cache_ttl after
	// verification, whichever is earlier.
	validUntil int64
}

const cacheShards = 16

// tokenCache maps a verified token to the identity it carries, so a client
// that repeats its token (the common case) skips the JOSE parse and the
// signature check: a hit does not allocate. The key is the token itself,
// compared byte for byte: unlike a digest it cannot collide, and Go's map
// hash is far cheaper than SHA-256. Only verified tokens are inserted, so
// junk cannot fill it; its memory is bounded by cache_size ×
// max_token_bytes. Entries never outlive
// the token's exp (+clock_skew) nor cache_ttl, so a key removed from the
// JWKS stops being honoured after at most cache_ttl. The cache is bounded:
// a full shard first drops expired entries, then an arbitrary one.
type tokenCache struct {
	shards   [cacheShards]cacheShard
	perShard int
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*identity
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	per := (size + cacheShards - 1) / cacheShards
	tc := &tokenCache{perShard: per}
	for i := range tc.shards {
		tc.shards[i].m = make(map[string]*identity, min(per, 1024))
	}
	return tc
}

// shard picks a shard from the token's last bytes: signature bytes, which
// are uniformly distributed for the (verified) tokens that get inserted.
func (tc *tokenCache) shard(tok []byte) *cacheShard {
	n := len(tok)
	return &tc.shards[(tok[n-1]^tok[n/2])%cacheShards]
}

// get returns the identity cached for tok; tok is not kept.
func (tc *tokenCache) get(tok []byte, now int64) *identity {
	sh := tc.shard(tok)
	sh.mu.RLock()
	id := sh.m[string(tok)] // no allocation: the compiler does not copy for a lookup
	sh.mu.RUnlock()
	if id == nil || now >= id.validUntil {
		return nil
	}
	return id
}

// put caches id for tok, copying tok.
func (tc *tokenCache) put(tok []byte, id *identity, now int64) {
	sh := tc.shard(tok)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[string(tok)]; !ok && len(sh.m) >= tc.perShard {
		// Look at a few entries (Go randomizes map iteration, so these are
		// random ones): drop the expired among them, or else the first.
		var victim string
		seen, evicted := 0, 0
		for k, v := range sh.m {
			if seen == 0 {
				victim = k
			}
			if now >= v.validUntil {
				delete(sh.m, k)
				evicted++
			}
			if seen++; seen == 16 {
				break
			}
		}
		if evicted == 0 {
			delete(sh.m, victim)
		}
	}
	sh.m[string(tok)] = id
}

func (tc *tokenCache) len() int {
	n := 0
	for i := range tc.shards {
		sh := &tc.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
