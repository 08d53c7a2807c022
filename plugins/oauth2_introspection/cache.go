package oauth2introspection

import (
	"sync"

	"github.com/weirgw/weir/sdk"
)

// entry is what a cached introspection grants, built once per answer and
// shared read-only by every request presenting the same token.
type entry struct {
	active     bool
	consumer   *sdk.Consumer
	credential string
	scopes     []string
	// scopesOK says whether scopes include every required scope.
	scopesOK bool
	// until (unix milliseconds) is when the answer stops being trusted.
	until int64
}

const cacheShards = 16

// memCache maps SHA-256(token) to entries. It is bounded: a full shard
// first drops expired entries among a few random ones, else one of them.
type memCache struct {
	shards   [cacheShards]memShard
	perShard int
}

type memShard struct {
	mu sync.RWMutex
	m  map[[32]byte]*entry
}

func newMemCache(size int) *memCache {
	if size <= 0 {
		return nil
	}
	per := (size + cacheShards - 1) / cacheShards
	mc := &memCache{perShard: per}
	for i := range mc.shards {
		mc.shards[i].m = make(map[[32]byte]*entry, min(per, 1024))
	}
	return mc
}

func (mc *memCache) get(key *[32]byte, nowMs int64) *entry {
	sh := &mc.shards[key[0]%cacheShards]
	sh.mu.RLock()
	e := sh.m[*key]
	sh.mu.RUnlock()
	if e == nil || nowMs >= e.until {
		return nil
	}
	return e
}

func (mc *memCache) put(key *[32]byte, e *entry, nowMs int64) {
	if nowMs >= e.until {
		return
	}
	sh := &mc.shards[key[0]%cacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[*key]; !ok && len(sh.m) >= mc.perShard {
		var victim [32]byte
		seen, evicted := 0, 0
		for k, v := range sh.m { // Go randomizes map iteration order
			if seen == 0 {
				victim = k
			}
			if nowMs >= v.until {
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
	sh.m[*key] = e
}

func (mc *memCache) len() int {
	n := 0
	for i := range mc.shards {
		sh := &mc.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
