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

// tokenCache maps SHA-256(token) to the identity it was verified to carry,
// so a client that repeats its token (the common case) skips the JOSE
// parse and signature check: a hit does not allocate. Entries never outlive
// the token's exp (+clock_skew) nor cache_ttl, so a key removed from the
// JWKS stops being honoured after at most cache_ttl. The cache is bounded:
// a full shard first drops expired entries, then an arbitrary one.
type tokenCache struct {
	shards   [cacheShards]cacheShard
	perShard int
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[32]byte]*identity
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	per := (size + cacheShards - 1) / cacheShards
	tc := &tokenCache{perShard: per}
	for i := range tc.shards {
		tc.shards[i].m = make(map[[32]byte]*identity, min(per, 1024))
	}
	return tc
}

func (tc *tokenCache) get(key *[32]byte, now int64) *identity {
	sh := &tc.shards[key[0]%cacheShards]
	sh.mu.RLock()
	id := sh.m[*key]
	sh.mu.RUnlock()
	if id == nil || now >= id.validUntil {
		return nil
	}
	return id
}

func (tc *tokenCache) put(key *[32]byte, id *identity, now int64) {
	sh := &tc.shards[key[0]%cacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[*key]; !ok && len(sh.m) >= tc.perShard {
		// Look at a few entries (Go randomizes map iteration, so these are
		// random ones): drop the expired among them, or else the first.
		var victim [32]byte
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
	sh.m[*key] = id
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
