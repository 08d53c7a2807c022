package cache

import (
	"context"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"
	"github.com/weirgw/weir/plugins/internal/redisguard"
)

// redisStore keeps entries in Redis, shared by every node of a cluster.
//
// Reads go through rueidis client-side caching (DoCache, RESP3 tracking):
// a hot object is served from the node's own memory, and when any node
// overwrites or deletes the key Redis pushes an invalidation to every node
// that cached it. A purge is therefore one DEL, seen by all nodes.
//
// Layout (prefix "weir:cache:"):
//
//	weir:cache:o:<key>  the encoded entry, PX = until its storeUntil
//	weir:cache:t:<tag>  SET of object keys carrying the surrogate key,
//	                    expiring with the longest-lived member
//
// Reads and writes on a request's time go through a redisguard.Guard: they
// share the request's budget (redis_timeout in all), return when it ends
// whatever Redis does, and are not attempted while the breaker is open. A
// read that Redis does not answer is a miss (the request is forwarded), a
// write is dropped.
type redisStore struct {
	c       rueidis.Client
	timeout time.Duration
	guard   *redisguard.Guard
	cscTTL  time.Duration
	errors  *metrics.Counter // may be nil
}

const (
	redisPrefix    = "weir:cache:"
	redisObjPrefix = redisPrefix + "o:"
	redisTagPrefix = redisPrefix + "t:"
	// cscMaxTTL bounds how long a node keeps an object in its client-side
	// cache without asking Redis; invalidations normally arrive long before.
	cscMaxTTL = time.Minute
)

func newRedisStore(c rueidis.Client, timeout time.Duration) *redisStore {
	return &redisStore{c: c, timeout: timeout, guard: redisguard.New(), cscTTL: cscMaxTTL}
}

// monoEpoch makes the breaker's clock monotonic: the now of get and set is
// wall-clock time, which may step.
var monoEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(monoEpoch)) }

func (s *redisStore) name() string { return "redis" }

// fail counts err unless it is a nil reply or a call the guard did not
// make (the breaker is open or the request's budget is spent): like
// rate_limit's store errors, the count is of Redis failures, not of
// requests served while Redis is known to be down.
func (s *redisStore) fail(err error) {
	if err == redisguard.ErrOpen || err == redisguard.ErrBudget {
		return
	}
	if err != nil && s.errors != nil && !rueidis.IsRedisNil(err) {
		s.errors.Inc()
	}
}

// budget returns b, or when b is nil (calls outside a request: tests,
// tools) own set to one timeout.
func (s *redisStore) budget(b, own *redisguard.Budget) *redisguard.Budget {
	if b != nil {
		return b
	}
	*own = redisguard.NewBudget(s.timeout)
	return own
}

func (s *redisStore) get(key []byte, now int64, b *redisguard.Budget) (entry, bool) {
	k := redisObjPrefix + string(key)
	var own redisguard.Budget
	// v is written by the call only while get still waits for it (see
	// redisguard.Guard.Do).
	var v string
	err := s.guard.Do(monoNow(), s.budget(b, &own), func(ctx context.Context) error {
		r := s.c.DoCache(ctx, s.c.B().Get().Key(k).Cache(), s.cscTTL)
		val, err := r.ToString()
		if rueidis.IsRedisNil(err) && r.IsCacheHit() {
			// The client-side cache remembers misses too, and the
			// invalidation for a key this node just wrote travels on
			// another connection than the write. A miss costs an
			// upstream fetch anyway, so it is confirmed with Redis
			// itself: hits stay local, misses are authoritative.
			val, err = s.c.Do(ctx, s.c.B().Get().Key(k).Build()).ToString()
		}
		v = val
		return err
	})
	if err != nil {
		s.fail(err)
		return nil, false
	}
	// The string is immutable and owned by the client-side cache or this
	// reply; a read-only view avoids copying the object on every hit.
	e := entry(unsafe.Slice(unsafe.StringData(v), len(v)))
	if !e.valid() || now > e.storeUntil() {
		return nil, false
	}
	return e, true
}

func (s *redisStore) set(key []byte, val []byte, now int64, b *redisguard.Budget) error {
	e := entry(val)
	ttl := (e.storeUntil() - now) / int64(time.Millisecond)
	if ttl <= 0 {
		return nil
	}
	k := redisObjPrefix + string(key)
	cmds := make(rueidis.Commands, 0, 4)
	cmds = append(cmds, s.c.B().Set().Key(k).Value(rueidis.BinaryString(val)).PxMilliseconds(ttl).Build())
	if e.kind() == kindResponse {
		forEachTag(e.tags(), func(t []byte) {
			tk := redisTagPrefix + string(t)
			cmds = append(cmds,
				s.c.B().Sadd().Key(tk).Member(k).Build(),
				// NX gives a new set a TTL, GT extends it for a
				// longer-lived member (Redis >= 7.0).
				s.c.B().Pexpire().Key(tk).Milliseconds(ttl).Nx().Build(),
				s.c.B().Pexpire().Key(tk).Milliseconds(ttl).Gt().Build())
		})
	}
	var own redisguard.Budget
	err := s.guard.Do(monoNow(), s.budget(b, &own), func(ctx context.Context) error {
		for _, r := range s.c.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
		return nil
	})
	s.fail(err)
	return err
}

func (s *redisStore) del(key []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	n, err := s.c.Do(ctx, s.c.B().Del().Key(redisObjPrefix+string(key)).Build()).AsInt64()
	s.fail(err)
	return n > 0
}

// purgePrefix scans every node for matching keys (O(keyspace), an admin
// operation) and deletes them in batches.
func (s *redisStore) purgePrefix(prefix []byte) int {
	pattern := redisObjPrefix + globEscape(prefix) + "*"
	total := 0
	nodes := s.c.Nodes()
	for _, node := range nodes {
		var cursor uint64
		for i := 0; i < 1_000_000; i++ { // bounded: a scan always ends, but never trust a loop
			ctx, cancel := context.WithTimeout(context.Background(), 10*s.timeout+time.Second)
			se, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
			cancel()
			if err != nil {
				s.fail(err)
				break
			}
			total += s.delKeys(se.Elements)
			cursor = se.Cursor
			if cursor == 0 {
				break
			}
		}
	}
	return total
}

func (s *redisStore) purgeTag(tag []byte) int {
	tk := redisTagPrefix + string(tag)
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.timeout+time.Second)
	keys, err := s.c.Do(ctx, s.c.B().Smembers().Key(tk).Build()).AsStrSlice()
	cancel()
	if err != nil {
		s.fail(err)
		return 0
	}
	n := s.delKeys(keys)
	ctx, cancel = context.WithTimeout(context.Background(), s.timeout)
	s.fail(s.c.Do(ctx, s.c.B().Del().Key(tk).Build()).Error())
	cancel()
	return n
}

// delKeys deletes full Redis keys one command each, so that a cluster
// routes every key to its own slot.
func (s *redisStore) delKeys(keys []string) int {
	if len(keys) == 0 {
		return 0
	}
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = s.c.B().Del().Key(k).Build()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.timeout+time.Second)
	defer cancel()
	n := 0
	for _, r := range s.c.DoMulti(ctx, cmds...) {
		v, err := r.AsInt64()
		s.fail(err)
		n += int(v)
	}
	return n
}

// globEscape quotes the glob metacharacters of a SCAN MATCH pattern.
func globEscape(b []byte) string {
	out := make([]byte, 0, len(b)+8)
	for _, c := range b {
		switch c {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return string(out)
}
