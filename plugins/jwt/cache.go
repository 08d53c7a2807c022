package jwt

import (
	"github.com/weirgw/weir/plugins/internal/ttlcache"
	"github.com/weirgw/weir/sdk"
)

// identity is what a verified token grants: computed once per token and
// shared read-only by every request that presents the same token while it
// is cached. Its strings are owned by the identity (never views into a
// request).
type identity struct {
	consumer *sdk.Consumer
	// named is the name of the consumer the token was matched to
	// (consumer may be nil: consumer_claim named no consumer), or "":
	// a cache hit stands only while that name still gives consumer
	// (credIndex.holds).
	named      string
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

// tokenCache maps a verified token to the identity it carries, so a client
// that repeats its token (the common case) skips the JOSE parse and the
// signature check: a hit does not allocate. The key is the token itself,
// compared byte for byte: unlike a digest it cannot collide, and Go's map
// hash is far cheaper than SHA-256. Only verified tokens are inserted, so
// junk cannot fill it; its memory is bounded by cache_size ×
// max_token_bytes. Entries never outlive the token's exp (+clock_skew) nor
// cache_ttl, so a key removed from the JWKS stops being honoured after at
// most cache_ttl. The cache is bounded: a full shard first drops expired
// entries, then an arbitrary one (package ttlcache).
type tokenCache struct {
	c *ttlcache.Cache[string, *identity]
}

// newTokenCache returns a cache of at most size tokens, or nil (no cache).
func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{c: ttlcache.New[string, *identity](size)}
}

// shardOf picks a shard from the token's last bytes: signature bytes, which
// are uniformly distributed for the (verified) tokens that get inserted.
func shardOf(tok []byte) uint8 {
	n := len(tok)
	return tok[n-1] ^ tok[n/2]
}

// get returns the identity cached for tok; tok is not kept.
func (tc *tokenCache) get(tok []byte, now int64) *identity {
	// The view is only used for the lookup, which does not keep it.
	id, _ := tc.c.Get(shardOf(tok), sdk.B2S(tok), now)
	return id
}

// put caches id for tok until id.validUntil, copying tok.
func (tc *tokenCache) put(tok []byte, id *identity, now int64) {
	tc.c.Put(shardOf(tok), string(tok), id, id.validUntil, now)
}

func (tc *tokenCache) len() int { return tc.c.Len() }
