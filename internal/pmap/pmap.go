// Package pmap is a persistent (immutable) hash map: With and Without
// return a new map that shares all but a path of O(log n) nodes with the
// old one, which stays valid and unchanged. The admin API changes one
// consumer of a million this way without copying the million (issue 17):
// the running snapshot keeps its map while the next one is built.
//
// The changes are kept in a hash trie of 32-way interior nodes over the
// key's 64-bit hash, five bits a level, with leaves of up to leafMax
// entries; a leaf whose hash bits are used up holds every colliding
// entry. Lookups do not allocate.
package pmap

const (
	bits     = 5
	fan      = 1 << bits
	leafMax  = 8
	maxShift = 60 // 64 hash bits: twelve levels of five, then leaves only
)

// trie is the persistent part of a Map.
type trie[K comparable, V any] struct {
	root *node[K, V]
	n    int
	hash func(K) uint64
}

type node[K comparable, V any] struct {
	kids    *[fan]*node[K, V] // nil for a leaf
	entries []entry[K, V]
}

type entry[K comparable, V any] struct {
	h uint64
	k K
	v V
}

// Map is immutable once shared; the zero Map is not usable (use New).
//
// A map first built in place (Set) keeps those entries in a Go map, as
// compact and as fast as one; what With and Without change after that
// goes into a persistent trie over it, which a lookup reads first. The
// trie holds only the changes made since the map was built (the admin
// API's writes between two full reloads), so it stays small.
type Map[K comparable, V any] struct {
	base map[K]V
	over *trie[K, change[V]] // nil until the first With or Without
	n    int
	hash func(K) uint64
}

// change is an entry of the trie: a value, or the removal of a key.
type change[V any] struct {
	v       V
	removed bool
}

// New returns an empty map, with room for size entries, whose keys hash
// with hash.
func New[K comparable, V any](hash func(K) uint64, size int) *Map[K, V] {
	return &Map[K, V]{base: make(map[K]V, size), hash: hash}
}

// Len is the number of entries.
func (m *Map[K, V]) Len() int {
	if m == nil {
		return 0
	}
	return m.n
}

// Get returns the value of k.
func (m *Map[K, V]) Get(k K) (V, bool) {
	if m == nil {
		var zero V
		return zero, false
	}
	if m.over != nil {
		if c, ok := m.over.Get(k); ok {
			return c.v, !c.removed
		}
	}
	v, ok := m.base[k]
	return v, ok
}

// Set puts k in place, changing m. Only for a map not yet shared (while it
// is first built), and before any With or Without.
func (m *Map[K, V]) Set(k K, v V) {
	// Before any change, the entries are base's: one lookup, not two.
	m.base[k] = v
	m.n = len(m.base)
}

// With returns a map with k set to v; m is unchanged.
func (m *Map[K, V]) With(k K, v V) *Map[K, V] {
	n := *m
	if _, ok := m.Get(k); !ok {
		n.n++
	}
	n.over = m.trie().With(k, change[V]{v: v})
	return &n
}

// Without returns a map without k; m is unchanged.
func (m *Map[K, V]) Without(k K) *Map[K, V] {
	if _, ok := m.Get(k); !ok {
		return m
	}
	n := *m
	n.n--
	if _, inBase := m.base[k]; inBase {
		n.over = m.trie().With(k, change[V]{removed: true})
	} else {
		n.over = m.over.Without(k)
	}
	return &n
}

func (m *Map[K, V]) trie() *trie[K, change[V]] {
	if m.over != nil {
		return m.over
	}
	return &trie[K, change[V]]{root: &node[K, change[V]]{}, hash: m.hash}
}

// Range calls f for every entry until f returns false, in no set order.
func (m *Map[K, V]) Range(f func(K, V) bool) {
	if m == nil {
		return
	}
	for k, v := range m.base {
		if m.over != nil {
			if _, changed := m.over.Get(k); changed {
				continue
			}
		}
		if !f(k, v) {
			return
		}
	}
	if m.over != nil {
		rangeNode(m.over.root, func(k K, c change[V]) bool { return c.removed || f(k, c.v) })
	}
}

// Get returns the value of k.
func (m *trie[K, V]) Get(k K) (V, bool) {
	var zero V
	if m == nil {
		return zero, false
	}
	h := m.hash(k)
	n := m.root
	for shift := 0; n.kids != nil; shift += bits {
		n = n.kids[(h>>shift)&(fan-1)]
		if n == nil {
			return zero, false
		}
	}
	for i := range n.entries {
		if e := &n.entries[i]; e.h == h && e.k == k {
			return e.v, true
		}
	}
	return zero, false
}

// With returns a map with k set to v; m is unchanged.
func (m *trie[K, V]) With(k K, v V) *trie[K, V] {
	root := cloneNode(m.root)
	n := m.n
	if set(root, entry[K, V]{h: m.hash(k), k: k, v: v}, 0, true) {
		n++
	}
	return &trie[K, V]{root: root, n: n, hash: m.hash}
}

// Without returns a map without k; m is unchanged.
func (m *trie[K, V]) Without(k K) *trie[K, V] {
	if _, ok := m.Get(k); !ok {
		return m
	}
	h := m.hash(k)
	root := cloneNode(m.root)
	n := root
	for shift := 0; n.kids != nil; shift += bits {
		i := (h >> shift) & (fan - 1)
		c := cloneNode(n.kids[i])
		n.kids[i] = c
		n = c
	}
	for i := range n.entries {
		if e := &n.entries[i]; e.h == h && e.k == k {
			n.entries = append(n.entries[:i:i], n.entries[i+1:]...)
			break
		}
	}
	return &trie[K, V]{root: root, n: m.n - 1, hash: m.hash}
}

func rangeNode[K comparable, V any](n *node[K, V], f func(K, V) bool) bool {
	if n == nil {
		return true
	}
	if n.kids != nil {
		for _, c := range n.kids {
			if !rangeNode(c, f) {
				return false
			}
		}
		return true
	}
	for _, e := range n.entries {
		if !f(e.k, e.v) {
			return false
		}
	}
	return true
}

// cloneNode copies one node: its child array, or its entries.
func cloneNode[K comparable, V any](n *node[K, V]) *node[K, V] {
	c := &node[K, V]{}
	if n == nil {
		return c
	}
	if n.kids != nil {
		kids := *n.kids
		c.kids = &kids
	} else {
		c.entries = append([]entry[K, V](nil), n.entries...)
	}
	return c
}

// set puts e under n (which the caller may change), copying the path
// below when persistent; it reports whether the key is new.
func set[K comparable, V any](n *node[K, V], e entry[K, V], shift int, persistent bool) bool {
	for n.kids != nil {
		i := (e.h >> shift) & (fan - 1)
		c := n.kids[i]
		if c == nil {
			c = &node[K, V]{}
		} else if persistent {
			c = cloneNode(c)
		}
		n.kids[i] = c
		n = c
		shift += bits
	}
	for i := range n.entries {
		if x := &n.entries[i]; x.h == e.h && x.k == e.k {
			x.v = e.v
			return false
		}
	}
	if len(n.entries) < leafMax || shift > maxShift {
		n.entries = append(n.entries, e)
		return true
	}
	// Split the full leaf into an interior node (n is already a copy when
	// persistent, and its entries move into fresh leaves).
	old := n.entries
	n.entries = nil
	n.kids = new([fan]*node[K, V])
	for _, x := range old {
		set(n, x, shift, false)
	}
	return set(n, e, shift, false)
}
