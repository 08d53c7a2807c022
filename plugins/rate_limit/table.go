package ratelimit

import (
	"hash/maphash"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// table is a bounded, sharded map from key bytes to a fixed number of
// int64 slots per entry. Slot 0 of every entry is its expiry: once it is
// <= now the entry carries no information and may be dropped (for GCRA
// buckets it is the latest TAT, for hybrid leases the end of the lease).
//
// Why this shape:
//   - Shards, each with its own mutex and padded to its own cache lines,
//     so that cores deciding for different keys do not contend.
//   - map[string]uint32 into one []int64 slab per shard instead of a map of
//     pointers: one allocation per key (its string) rather than two, and
//     values the garbage collector never has to scan.
//   - Lookups index the map with string(key) on a []byte, which the
//     compiler does without allocating, so an existing key costs nothing.
//   - Bounded: the table holds at most max entries (counted across shards
//     with one atomic, touched only when a key is added or dropped). A new
//     key that would exceed it first drops expired entries from a sample
//     of its shard and, if none is expired, evicts the sampled entry
//     closest to expiry (the one whose bucket is nearest to full, so the
//     least is forgotten). A new key landing on an empty shard of a full
//     table is added anyway, so the bound may be passed by at most the
//     number of shards. A background
//     sweep (Start) also drops expired entries so idle keys free their
//     slots. Go maps do not shrink, so memory stays at the high-water mark,
//     which max bounds.
type table struct {
	shards []shard
	mask   uint64
	stride int
	seed   maphash.Seed
	max    int64
	count  atomic.Int64
}

type shard struct {
	mu    sync.Mutex
	cond  sync.Cond // on mu; hybrid leases wait here for a fetch in flight
	idx   map[string]uint32
	slots []int64
	free  []uint32
	_     [64]byte // keep neighbouring shards' mutexes off this cache line
}

// evictSample is how many entries makeRoom inspects; Redis uses 5 for
// its approximated LRU, a few more make a poor victim less likely.
const evictSample = 8

// shardCount is how many shards a per-key structure gets: at least 64,
// 16 per core, a power of two (so a hash picks one with a mask).
func shardCount() int {
	n := 64
	for n < 16*runtime.GOMAXPROCS(0) {
		n *= 2
	}
	return n
}

func newTable(maxKeys, stride int) *table {
	n := shardCount()
	t := &table{shards: make([]shard, n), mask: uint64(n - 1), stride: stride, seed: maphash.MakeSeed(),
		max: int64(maxKeys)}
	for i := range t.shards {
		t.shards[i].idx = make(map[string]uint32)
		t.shards[i].cond.L = &t.shards[i].mu
	}
	return t
}

// shardFor picks key's shard.
func (t *table) shardFor(key []byte) *shard {
	return &t.shards[maphash.Bytes(t.seed, key)&t.mask]
}

// entry returns key's slots in s, creating a zeroed entry if absent. The
// caller holds s.mu; the slice is valid until it is released.
func (t *table) entry(s *shard, key []byte, now int64) []int64 {
	st := t.stride
	if i, ok := s.idx[string(key)]; ok {
		o := int(i) * st
		return s.slots[o : o+st : o+st]
	}
	if t.count.Load() >= t.max && len(s.idx) > 0 {
		t.makeRoom(s, now)
	}
	var i uint32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		i = uint32(len(s.slots) / st)
		for range st {
			s.slots = append(s.slots, 0)
		}
	}
	o := int(i) * st
	e := s.slots[o : o+st : o+st]
	clear(e)
	s.idx[string(key)] = i
	t.count.Add(1)
	return e
}

// lookup returns key's slots without creating them (nil when absent).
func (t *table) lookup(s *shard, key []byte) []int64 {
	if i, ok := s.idx[string(key)]; ok {
		o := int(i) * t.stride
		return s.slots[o : o+t.stride : o+t.stride]
	}
	return nil
}

func (t *table) makeRoom(s *shard, now int64) {
	victim, oldest, seen, freed := "", int64(math.MaxInt64), 0, false
	for k, i := range s.idx {
		exp := s.slots[int(i)*t.stride]
		if exp <= now {
			t.remove(s, k, i)
			freed = true
		} else if exp < oldest {
			victim, oldest = k, exp
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if !freed && seen > 0 {
		t.remove(s, victim, s.idx[victim])
	}
}

func (t *table) remove(s *shard, k string, i uint32) {
	delete(s.idx, k)
	s.free = append(s.free, i)
	t.count.Add(-1)
}

// sweep drops every expired entry; it holds one shard's lock at a time.
// It returns how many entries it dropped.
func (t *table) sweep(now int64) int {
	n := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		for k, i := range s.idx {
			if s.slots[int(i)*t.stride] <= now {
				t.remove(s, k, i)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// len counts the live entries (for tests and the memory benchmark).
func (t *table) len() int {
	n := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		n += len(s.idx)
		s.mu.Unlock()
	}
	return n
}
