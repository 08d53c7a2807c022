package cache

import "github.com/weirgw/weir/plugins/internal/redisguard"

// store keeps encoded entries (see entry.go) under byte-string keys.
//
// Keys are the primary key of a resource (host + path + query) or, for a
// response that varies, that primary key followed by 0x00, the marker id
// and the normalised secondary key, so every key of a resource starts with
// its primary key and a prefix purge reaches its variants.
//
// Implementations are safe for concurrent use. get returns a read-only view
// that stays valid for as long as the caller holds it (stored slices are
// never modified in place).
type store interface {
	// get returns the entry stored under key, or false when there is none
	// or it has passed its storeUntil time (now, Unix ns). b is the
	// request's remaining time for a remote store (nil: the store's own
	// timeout for this one call); a store that cannot answer within it
	// reports a miss.
	get(key []byte, now int64, b *redisguard.Budget) (entry, bool)
	// set stores e under key until e.storeUntil(); tags (space separated)
	// index it for purgeTag. e is owned by the store afterwards. b is as
	// for get; a store that cannot store within it returns an error.
	set(key []byte, e []byte, now int64, b *redisguard.Budget) error
	// del removes key and reports whether it was present.
	del(key []byte) bool
	// purgePrefix removes every key starting with prefix.
	purgePrefix(prefix []byte) int
	// purgeTag removes every entry stored with tag.
	purgeTag(tag []byte) int
	// name is "memory" or "redis", for logs and metrics.
	name() string
}

// forEachTag calls fn for each tag of a space- or comma-separated list.
func forEachTag(tags []byte, fn func(tag []byte)) {
	i := 0
	for i < len(tags) {
		for i < len(tags) && (tags[i] == ' ' || tags[i] == ',' || tags[i] == '\t') {
			i++
		}
		j := i
		for j < len(tags) && tags[j] != ' ' && tags[j] != ',' && tags[j] != '\t' {
			j++
		}
		if j > i {
			fn(tags[i:j])
		}
		i = j
	}
}
