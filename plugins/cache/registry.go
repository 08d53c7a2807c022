package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Live instances and their stores.
//
// A scope is what outlives config reloads: the store (for memory, the
// objects themselves) and the collapsing table of one route. An instance
// built by New gets a private scope so that `weir validate` registers
// nothing; Start swaps in the registered scope of the same route and store
// kind (adopting the previous snapshot's objects) and Close releases it.
// The scope disappears with the last instance using it.
//
// Purge and friends act on every registered scope; with Redis configured
// they also publish the purge so that every node applies it to its memory
// stores (Redis stores are purged once, centrally, and client-side caches
// follow through Redis' invalidation messages).

type scope struct {
	key     string // kind + "|" + route
	refs    int
	st      store
	mem     *memoryStore // when st is a memory store
	flights *flightGroup
	redis   rueidis.Client // when st is a Redis store
}

var registry = struct {
	mu     sync.Mutex
	scopes map[string]*scope
	buses  map[rueidis.Client]*purgeBus
}{scopes: map[string]*scope{}, buses: map[rueidis.Client]*purgeBus{}}

// acquireScope registers s, or returns the already registered scope with
// the same key (after applying s's memory limit to it).
func acquireScope(s *scope, maxBytes int64) *scope {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if cur := registry.scopes[s.key]; cur != nil {
		cur.refs++
		if cur.mem != nil {
			cur.mem.setLimit(maxBytes)
		}
		return cur
	}
	s.refs = 1
	registry.scopes[s.key] = s
	return s
}

func releaseScope(s *scope) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if cur := registry.scopes[s.key]; cur == s {
		s.refs--
		if s.refs <= 0 {
			delete(registry.scopes, s.key)
		}
	}
}

// liveStores returns the stores to purge: every memory store, and each
// Redis client once (all Redis scopes share one keyspace).
func liveStores(includeRedis bool) []store {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	out := make([]store, 0, len(registry.scopes))
	seen := map[rueidis.Client]bool{}
	keys := make([]string, 0, len(registry.scopes))
	for k := range registry.scopes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := registry.scopes[k]
		if s.redis != nil {
			if !includeRedis || seen[s.redis] {
				continue
			}
			seen[s.redis] = true
		}
		out = append(out, s.st)
	}
	return out
}

// Purge removes the object stored for url (absolute, e.g.
// "https://api.example.com/users/7?full=1"; the scheme is ignored) from
// every live cache, with all its Vary variants, and returns how many
// stored keys were removed on this node (and in Redis). With Redis
// configured the purge is also published to every other node.
func Purge(url string) (int, error) {
	key, err := urlKey(url, false)
	if err != nil {
		return 0, err
	}
	n := purgeLocal('u', key, true)
	publishPurge('u', key)
	return n, nil
}

// PurgePrefix removes every object whose URL starts with prefix
// ("https://api.example.com/users/" or a whole host,
// "https://api.example.com").
func PurgePrefix(prefix string) (int, error) {
	key, err := urlKey(prefix, true)
	if err != nil {
		return 0, err
	}
	n := purgeLocal('p', key, true)
	publishPurge('p', key)
	return n, nil
}

// PurgeTag removes every object stored with the surrogate key tag (from
// the configured tag_header).
func PurgeTag(tag string) (int, error) {
	tag = strings.TrimSpace(tag)
	if tag == "" || strings.ContainsAny(tag, " \t,") {
		return 0, fmt.Errorf("cache: tag must be one non-empty surrogate key, got %q", tag)
	}
	n := purgeLocal('t', []byte(tag), true)
	publishPurge('t', []byte(tag))
	return n, nil
}

func purgeLocal(kind byte, v []byte, includeRedis bool) int {
	n := 0
	for _, st := range liveStores(includeRedis) {
		switch kind {
		case 'u':
			// The primary key holds the object or the Vary marker; the
			// variants hang below it and are removed with it.
			if st.del(v) {
				n++
			}
			variants := append(append([]byte(nil), v...), 0)
			n += st.purgePrefix(variants)
		case 'p':
			n += st.purgePrefix(v)
		case 't':
			n += st.purgeTag(v)
		}
	}
	return n
}

// Cluster purges over Redis pub/sub.

const purgeChannel = redisPrefix + "purge"

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type purgeBus struct {
	id     string // tells this node's own messages apart from other nodes'
	c      rueidis.Client
	refs   int
	cancel context.CancelFunc
	done   chan struct{}
}

// acquireBus subscribes this node to purges published by the others (once
// per Redis client, however many instances use it).
func acquireBus(c rueidis.Client, log *slog.Logger) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if b := registry.buses[c]; b != nil {
		b.refs++
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &purgeBus{id: randomID(), c: c, refs: 1, cancel: cancel, done: make(chan struct{})}
	registry.buses[c] = b
	go b.run(ctx, log)
}

func releaseBus(c rueidis.Client) {
	registry.mu.Lock()
	b := registry.buses[c]
	if b != nil {
		b.refs--
		if b.refs > 0 {
			b = nil
		} else {
			delete(registry.buses, c)
		}
	}
	registry.mu.Unlock()
	if b != nil {
		b.cancel()
		<-b.done
	}
}

func (b *purgeBus) run(ctx context.Context, log *slog.Logger) {
	defer close(b.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.c.Receive(ctx, b.c.B().Subscribe().Channel(purgeChannel).Build(), func(m rueidis.PubSubMessage) {
			applyRemotePurge(b.id, m.Message)
		})
		if ctx.Err() != nil {
			return
		}
		if log != nil {
			log.Warn("cache: purge subscription lost, retrying", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// publishPurge tells the other nodes about a purge: "<node> <kind> <value>".
func publishPurge(kind byte, v []byte) {
	registry.mu.Lock()
	buses := make([]*purgeBus, 0, len(registry.buses))
	for _, b := range registry.buses {
		buses = append(buses, b)
	}
	registry.mu.Unlock()
	for _, b := range buses {
		msg := b.id + " " + string(kind) + " " + string(v)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = b.c.Do(ctx, b.c.B().Publish().Channel(purgeChannel).Message(msg).Build()).Error()
		cancel()
	}
}

// applyRemotePurge applies a purge another node published; self is the
// receiving bus' id, to skip our own messages.
func applyRemotePurge(self, msg string) {
	node, rest, ok := strings.Cut(msg, " ")
	if !ok || node == self || len(rest) < 2 || rest[1] != ' ' {
		return
	}
	switch rest[0] {
	case 'u', 'p', 't':
		// Redis stores were purged by the sender; only memory stores are
		// per node.
		purgeLocal(rest[0], []byte(rest[2:]), false)
	}
}
