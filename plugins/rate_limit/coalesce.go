package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
	"unsafe"

	"github.com/weirgw/weir/plugins/internal/redisguard"
)

// coalescer collapses concurrent policy redis decisions for one key on
// this node into one Redis call (request collapsing). While a call for a
// key is in flight, later requests for that key queue in a batch; when
// the call's answer comes, the batch goes in the next call with want = k
// (the number of requests in it). The script grants what the limits can
// give, g <= k, at one instant: the first g requests of the batch (in the
// order they joined) are admitted, the rest refused, each with the
// headers it would have got had the k decisions been made one after the
// other at that instant (batch.result).
//
// On a hot key this turns k round trips (each an EVALSHA that costs Redis
// ~10 µs of CPU, and the node a write, a read and goroutine hand-offs)
// into one; on distinct keys it does nothing but one map insert and
// delete per decision.
//
// Bounds: a batch carries at most maxCoalesce requests (a request that
// finds the waiting batch full makes its own call). A request waits for
// the call in flight, then for its batch's call; the wait is charged to
// its Redis budget (like a hybrid fetch), and a batch's call gets the
// budget left to its first request, which joined before the others. The
// call in flight was sent before the batch began, by a request that
// joined before it, so every request is decided (or falls back) within
// its own timeout, as without coalescing.
//
// Accuracy is that of separate decisions: Redis grants the batch's tokens
// at one instant, which is where a decision made by each of them would
// have fallen between its arrival and its answer. A batch whose call
// fails or times out falls back request by request (on_store_failure),
// and a late answer gives back what Redis granted to the whole batch
// (fallbackStore.late).
type coalescer struct {
	shards []coalShard
	mask   uint64
	seed   maphash.Seed
	remote *remote
	limits []limit
}

// maxCoalesce is the most requests one Redis call decides.
const maxCoalesce = 64

type coalShard struct {
	mu sync.Mutex
	// calls holds the batch whose call is in flight, or about to be sent,
	// for every key that has one; the map key is a view of batch.key.
	calls map[string]*batch
	_     [64]byte // keep neighbouring shards' mutexes off this cache line
}

// batch is the requests for one key decided by one Redis call. All its
// fields are guarded by its shard's mutex.
type batch struct {
	key    []byte
	n      int64  // requests in the batch; the i-th to join is position i
	turn   bool   // its call may be sent: first in calls
	sent   bool   // its call was sent, with want = n: no more joins
	done   bool   // d and err are set
	unread int64  // requests that have not read d and err yet
	next   *batch // the batch waiting behind this one
	d      decision
	err    error
	lead   sync.Cond // position 0 waits here for turn
	ready  sync.Cond // the others wait here for done
}

var batches = sync.Pool{New: func() any { return new(batch) }}

func newCoalescer(r *remote, limits []limit) *coalescer {
	n := shardCount()
	c := &coalescer{shards: make([]coalShard, n), mask: uint64(n - 1), seed: maphash.MakeSeed(),
		remote: r, limits: limits}
	for i := range c.shards {
		c.shards[i].calls = make(map[string]*batch)
	}
	return c
}

// newBatch returns an empty batch for key in sh.
func newBatch(sh *coalShard, key []byte) *batch {
	b := batches.Get().(*batch)
	b.key = append(b.key[:0], key...)
	b.lead.L, b.ready.L = &sh.mu, &sh.mu
	return b
}

// mapKey is b.key as the calls map's key (valid while b is in the map).
func (b *batch) mapKey() string { return unsafe.String(unsafe.SliceData(b.key), len(b.key)) }

// take decides one request for key, coalesced with the others for key
// on this node. shared reports that the decision rode on a call another
// request made (so a failure is that call's, counted once).
func (c *coalescer) take(key []byte, now int64, bud *redisguard.Budget, m *routeMetrics) (d decision, shared bool, err error) {
	sh := &c.shards[maphash.Bytes(c.seed, key)&c.mask]
	sh.mu.Lock()
	cur := sh.calls[string(key)]
	if cur == nil {
		b := newBatch(sh, key)
		b.n, b.turn = 1, true
		sh.calls[b.mapKey()] = b
		d, err = c.send(sh, b, key, now, bud, m)
		return d, false, err
	}
	b := cur
	if cur.sent {
		if cur.next == nil {
			cur.next = newBatch(sh, key)
		}
		b = cur.next
	}
	if b.n >= maxCoalesce {
		sh.mu.Unlock()
		d, err = c.remote.take(key, 1, now, bud, m)
		return d, false, err
	}
	pos := b.n
	b.n++
	start := time.Now()
	for !b.done {
		if pos == 0 && b.turn {
			bud.Charge(time.Since(start))
			d, err = c.send(sh, b, key, c.remote.now(), bud, m)
			return d, false, err
		}
		if pos == 0 {
			b.lead.Wait()
		} else {
			b.ready.Wait()
		}
	}
	d, err = c.read(b, pos)
	sh.mu.Unlock()
	bud.Charge(time.Since(start))
	m.coalesced.Inc()
	return d, true, err
}

// send makes b's call, whose turn it is, and hands the answer to b's
// requests; it returns position 0's. The caller holds sh.mu; send
// releases it.
func (c *coalescer) send(sh *coalShard, b *batch, key []byte, now int64, bud *redisguard.Budget, m *routeMetrics) (decision, error) {
	b.sent = true
	want := b.n
	sh.mu.Unlock()
	d, err := c.remote.take(key, want, now, bud, m)
	sh.mu.Lock()
	b.d, b.err, b.done, b.unread = d, err, true, b.n
	delete(sh.calls, b.mapKey())
	if nx := b.next; nx != nil {
		nx.turn = true
		sh.calls[nx.mapKey()] = nx
		nx.lead.Signal() // only its position 0 waits there
	}
	if b.n > 1 {
		b.ready.Broadcast()
	}
	d, err = c.read(b, 0)
	sh.mu.Unlock()
	return d, err
}

// read returns position pos's decision from b's answer and gives b back
// to the pool once every request has read it. The caller holds the
// shard's mutex.
func (c *coalescer) read(b *batch, pos int64) (decision, error) {
	d, err := c.result(b, pos)
	if b.unread--; b.unread == 0 {
		key := b.key
		*b = batch{key: key}
		batches.Put(b)
	}
	return d, err
}

// result is position pos's decision from b's answer: granted when pos is
// among the first d.granted, with what was left after it (the tokens
// granted to the positions after it were still there); refused otherwise,
// as a refusal after the whole grant.
func (c *coalescer) result(b *batch, pos int64) (decision, error) {
	if b.err != nil {
		return decision{}, b.err
	}
	d := b.d
	if g := d.granted; pos < g {
		after := g - 1 - pos
		d.granted = 1
		d.remaining += after
		d.reset = max(0, d.reset-after*c.limits[d.idx].T)
		d.retry = 0
		return d, nil
	}
	d.granted, d.remaining = 0, 0
	d.idx, d.reset = d.rejIdx, d.rejReset
	d.limit = c.limits[d.idx].burst
	return d, nil
}
