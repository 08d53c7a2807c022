// Package ttlcache is the bounded in-process cache the token plugins keep
// of their verdicts (jwt: verified tokens; oauth2_introspection:
// introspection answers): a map sharded under read-write locks, whose
// entries stop being served at a time the caller sets, and which never
// holds more than about the size it was made with.
package ttlcache

import "sync"

// Shards is the number of shards; callers pick one per key (see Get).
const Shards = 16

// evictScan is how many entries a full shard looks at to make room.
const evictScan = 16

// Cache maps K to V. It is safe for concurrent use. Values are shared by
// every caller that gets them, so they must be immutable once put.
type Cache[K comparable, V any] struct {
	shards   [Shards]shard[K, V]
	perShard int
}

type shard[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]entry[V]
}

type entry[V any] struct {
	v V
	// until is when the entry stops being served, in the caller's clock
	// and unit (the same as the now passed to Get and Put).
	until int64
}

// New returns a cache of at most size entries (rounded up to a multiple of
// Shards), or nil when size <= 0: no cache.
func New[K comparable, V any](size int) *Cache[K, V] {
	if size <= 0 {
		return nil
	}
	per := (size + Shards - 1) / Shards
	c := &Cache[K, V]{perShard: per}
	for i := range c.shards {
		c.shards[i].m = make(map[K]entry[V], min(per, 1024))
	}
	return c
}

// Get returns the value of k while now is before its until. shard (taken
// modulo Shards) must be the same for every Get and Put of k; callers
// derive it from key bytes that are uniformly distributed. Get does not
// keep k, so k may be a view into a request (sdk.B2S); it does not
// allocate.
func (c *Cache[K, V]) Get(shard uint8, k K, now int64) (v V, ok bool) {
	sh := &c.shards[shard%Shards]
	sh.mu.RLock()
	e, found := sh.m[k]
	sh.mu.RUnlock()
	if !found || now >= e.until {
		return v, false
	}
	return e.v, true
}

// Put stores v under k until the time until (see Get for shard); k is
// kept, so it must not be a view into a request. A full shard first drops
// the expired among a few random entries, else one of them.
func (c *Cache[K, V]) Put(shard uint8, k K, v V, until, now int64) {
	sh := &c.shards[shard%Shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok && len(sh.m) >= c.perShard {
		// Go randomizes map iteration, so these are random entries.
		var victim K
		seen, evicted := 0, 0
		for k2, e := range sh.m {
			if seen == 0 {
				victim = k2
			}
			if now >= e.until {
				delete(sh.m, k2)
				evicted++
			}
			if seen++; seen == evictScan {
				break
			}
		}
		if evicted == 0 {
			delete(sh.m, victim)
		}
	}
	sh.m[k] = entry[V]{v: v, until: until}
}

// Len is the number of entries, expired ones included.
func (c *Cache[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
