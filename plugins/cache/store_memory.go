package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/plugins/internal/redisguard"
)

// memoryStore is a sharded in-process store bounded by bytes.
//
// Eviction is CLOCK (second chance), which approximates LRU without making
// reads write shared state: a hit takes the shard's read lock and sets the
// item's reference bit; only inserts take the write lock and walk the
// clock, giving a referenced item another round and evicting the first
// unreferenced (or expired) one. Each shard holds maxBytes/shards, so the
// whole store never exceeds maxBytes (keys, values and a fixed per-item
// overhead are counted).
type memoryStore struct {
	seed     maphash.Seed
	shards   []memShard
	mask     uint64
	perShard atomic.Int64
	maxBytes atomic.Int64

	tagMu sync.Mutex
	tags  map[string]map[string]struct{} // tag -> keys

	evictions *metrics.Counter // may be nil
}

// itemOverhead approximates the bookkeeping of one item (struct, map slot,
// key header) so that many tiny objects cannot exceed max_bytes by much.
const itemOverhead = 128

type memShard struct {
	mu    sync.RWMutex
	m     map[string]*memItem
	head  *memItem // clock hand: oldest first
	tail  *memItem
	bytes int64
	_     [40]byte // keep shards on separate cache lines
}

type memItem struct {
	key        string
	val        []byte
	until      int64
	size       int64
	ref        atomic.Uint32
	prev, next *memItem
}

// newMemoryStore makes a store of at most maxBytes with shards sized so
// that an object of maxObject bytes still fits in one shard.
func newMemoryStore(maxBytes, maxObject int64) *memoryStore {
	n := 1
	for n < 64 && maxBytes/int64(n*2) >= 4*(maxObject+itemOverhead) {
		n *= 2
	}
	s := &memoryStore{seed: maphash.MakeSeed(), shards: make([]memShard, n), mask: uint64(n - 1),
		tags: map[string]map[string]struct{}{}}
	for i := range s.shards {
		s.shards[i].m = map[string]*memItem{}
	}
	s.setLimit(maxBytes)
	return s
}

// setLimit changes the byte budget (a reload may change max_bytes); the
// next inserts evict down to it.
func (s *memoryStore) setLimit(maxBytes int64) {
	s.maxBytes.Store(maxBytes)
	s.perShard.Store(maxBytes / int64(len(s.shards)))
}

func (s *memoryStore) name() string { return "memory" }

func (s *memoryStore) shard(key []byte) *memShard {
	return &s.shards[maphash.Bytes(s.seed, key)&s.mask]
}

func (s *memoryStore) get(key []byte, now int64, _ *redisguard.Budget) (entry, bool) {
	sh := s.shard(key)
	sh.mu.RLock()
	it := sh.m[string(key)]
	if it == nil || now > it.until {
		sh.mu.RUnlock()
		return nil, false
	}
	if it.ref.Load() == 0 {
		it.ref.Store(1)
	}
	v := it.val
	sh.mu.RUnlock()
	return entry(v), true
}

func (s *memoryStore) set(key []byte, val []byte, now int64, _ *redisguard.Budget) error {
	size := int64(len(key)+len(val)) + itemOverhead
	limit := s.perShard.Load()
	if size > limit {
		return nil // larger than a shard: not cached (max_object_bytes bounds this)
	}
	e := entry(val)
	it := &memItem{key: string(key), val: val, until: e.storeUntil(), size: size}
	sh := s.shard(key)
	sh.mu.Lock()
	if old := sh.m[it.key]; old != nil {
		sh.unlink(old)
		s.untag(old)
	}
	sh.m[it.key] = it
	sh.pushBack(it)
	s.tag(it)
	var evicted uint64
	// Each referenced item is given one more round; 2*len bounds the walk.
	for steps := 2*len(sh.m) + 2; sh.bytes > limit && sh.head != nil && steps > 0; steps-- {
		h := sh.head
		if h != it && h.ref.Load() != 0 && now <= h.until {
			h.ref.Store(0)
			sh.unlink(h)
			sh.pushBack(h)
			continue
		}
		sh.unlink(h)
		delete(sh.m, h.key)
		s.untag(h)
		if h != it {
			evicted++
		}
	}
	sh.mu.Unlock()
	if evicted > 0 && s.evictions != nil {
		s.evictions.Add(int(evicted))
	}
	return nil
}

func (s *memoryStore) del(key []byte) bool {
	sh := s.shard(key)
	sh.mu.Lock()
	it := sh.m[string(key)]
	if it != nil {
		sh.unlink(it)
		delete(sh.m, it.key)
		s.untag(it)
	}
	sh.mu.Unlock()
	return it != nil
}

func (s *memoryStore) purgePrefix(prefix []byte) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, it := range sh.m {
			if len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
				sh.unlink(it)
				delete(sh.m, k)
				s.untag(it)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

func (s *memoryStore) purgeTag(tag []byte) int {
	s.tagMu.Lock()
	set := s.tags[string(tag)]
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	s.tagMu.Unlock()
	n := 0
	for _, k := range keys {
		if s.del([]byte(k)) {
			n++
		}
	}
	return n
}

// len and bytes report the current content (tests and gauges).
func (s *memoryStore) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

func (s *memoryStore) bytes() int64 {
	var n int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += sh.bytes
		sh.mu.RUnlock()
	}
	return n
}

// tag and untag keep the tag index in step with the items; called with the
// item's shard locked (lock order: shard, then tagMu).
func (s *memoryStore) tag(it *memItem) {
	e := entry(it.val)
	if e.kind() != kindResponse || len(e.tags()) == 0 {
		return
	}
	s.tagMu.Lock()
	forEachTag(e.tags(), func(t []byte) {
		set := s.tags[string(t)]
		if set == nil {
			set = map[string]struct{}{}
			s.tags[string(t)] = set
		}
		set[it.key] = struct{}{}
	})
	s.tagMu.Unlock()
}

func (s *memoryStore) untag(it *memItem) {
	e := entry(it.val)
	if e.kind() != kindResponse || len(e.tags()) == 0 {
		return
	}
	s.tagMu.Lock()
	forEachTag(e.tags(), func(t []byte) {
		if set := s.tags[string(t)]; set != nil {
			delete(set, it.key)
			if len(set) == 0 {
				delete(s.tags, string(t))
			}
		}
	})
	s.tagMu.Unlock()
}

func (sh *memShard) pushBack(it *memItem) {
	it.prev, it.next = sh.tail, nil
	if sh.tail != nil {
		sh.tail.next = it
	} else {
		sh.head = it
	}
	sh.tail = it
	sh.bytes += it.size
}

func (sh *memShard) unlink(it *memItem) {
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		sh.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		sh.tail = it.prev
	}
	it.prev, it.next = nil, nil
	sh.bytes -= it.size
}
