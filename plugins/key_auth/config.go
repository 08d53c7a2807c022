package keyauth

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"unsafe"

	"github.com/weirgw/weir/internal/pmap"

	"github.com/weirgw/weir/plugins/internal/confval"
	"github.com/weirgw/weir/sdk"
)

// Config is the plugin's `config` object.
type Config struct {
	// Header is the request header carrying the key; "" disables headers.
	// Default X-API-Key.
	Header *string `json:"header"`
	// HeaderNames lists several headers, tried in order (instead of Header).
	HeaderNames []string `json:"header_names"`
	// Query is the query parameter carrying the key; "" disables the query.
	// Default apikey.
	Query *string `json:"query"`
	// QueryNames lists several query parameters, tried in order (instead
	// of Query).
	QueryNames []string `json:"query_names"`
	// HideCredentials removes the key (every configured header and query
	// parameter) from the request before it is forwarded.
	HideCredentials bool `json:"hide_credentials"`
	// Anonymous names a consumer that requests without a valid key are
	// attributed to instead of being refused (Kong's `anonymous`).
	Anonymous string `json:"anonymous"`
	// RedisLookup, when set, looks keys no consumer of the config has up
	// in Redis (see redis.go).
	RedisLookup *RedisLookup `json:"redis_lookup"`
}

// Credential is one entry of a consumer's `credentials.key_auth` list.
type Credential struct {
	Key string `json:"key"`
	// ID names the credential in logs and for limits keyed on credentials;
	// default "CONSUMER#INDEX". The key itself is never used as an ID so
	// that it does not leak into logs or metrics.
	ID string `json:"id"`
}

const (
	defaultHeader = "X-API-Key"
	defaultQuery  = "apikey"
)

// sources resolves the header and query names from cfg.
func sources(cfg *Config) (headers, queries []string, err error) {
	// The header and query settings are each checked and the errors
	// joined: one run shows them all.
	var errs []error
	headers, err = names("header", cfg.Header, "header_names", cfg.HeaderNames, defaultHeader)
	if err != nil {
		errs = append(errs, err)
	}
	for i, h := range headers {
		if !confval.IsToken(h) {
			key := "header"
			if cfg.HeaderNames != nil {
				key = fmt.Sprintf("header_names[%d]", i)
			}
			errs = append(errs, fmt.Errorf("%s: %q is not a valid header name", key, h))
		}
	}
	queries, err = names("query", cfg.Query, "query_names", cfg.QueryNames, defaultQuery)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	if len(headers) == 0 && len(queries) == 0 {
		return nil, nil, errors.New("no place to read the key from: set header or query")
	}
	return headers, queries, nil
}

func names(oneKey string, one *string, listKey string, list []string, def string) ([]string, error) {
	switch {
	case one != nil && list != nil:
		return nil, fmt.Errorf("set %s or %s, not both", oneKey, listKey)
	case list != nil:
		for i, n := range list {
			if n == "" {
				return nil, fmt.Errorf("%s[%d]: empty name; remove it", listKey, i)
			}
			for j := range i {
				if list[j] == n {
					return nil, fmt.Errorf("%s[%d]: %q is listed twice", listKey, i, n)
				}
			}
		}
		return list, nil
	case one == nil:
		return []string{def}, nil
	case *one == "":
		return nil, nil
	default:
		return []string{*one}, nil
	}
}

// entry is one indexed key.
type entry struct {
	// key is a view into the consumer's raw credential when it is
	// written plainly (plainKeyOnly): a million keys are not copied.
	key      string
	consumer *sdk.Consumer
	id       string
	// next is another key whose digest starts with the same 8 bytes: a
	// chain that, with 64 bits, is one entry long unless the config holds
	// billions of keys. Entries are immutable once indexed.
	next *entry
}

// keyIndex maps the first 8 bytes of the SHA-256 of every consumer's
// key_auth key to its entry. The digest is what makes the lookup safe to
// do with a hash map: how long a lookup takes depends only on the digest
// of what the client sent, which tells an attacker nothing about any
// stored key, so an attacker cannot learn a key byte by byte from timing.
// Eight bytes rather than 32: the map's slots are 16 bytes instead of 40
// (at a million consumers, 60 MB less and faster to build), and the key
// itself is compared, in constant time, after the lookup.
//
// The index lives with the consumers (sdk.IndexSlot), not in a filter:
// every key_auth instance of a snapshot reads the same one (a config with
// many routes hashes each key once per load), and a change of one
// consumer through the admin API updates it (With) in time that does not
// grow with the number of consumers, while the running snapshot keeps
// reading the old one. Both maps are persistent (internal/pmap).
type keyIndex struct {
	keys *pmap.Map[uint64, *entry]
	// ids holds the ids written out, with their consumer's name: a
	// default id ("CONSUMER#INDEX") is unique with its consumer's name,
	// so only an explicit id can collide, with another or with a default
	// one.
	ids *pmap.Map[string, string]
}

var slot = sdk.NewIndexSlot(func(cs *sdk.Consumers) (sdk.ConsumerIndex, error) { return buildIndex(cs) })

// keySeed keys the index's hash: drawn at random when the process starts,
// so no client can compute where a key lands in the index.
var keySeed = maphash.MakeSeed()

// digestPrefix is the index key of key: its maphash under keySeed (AES
// rounds where the CPU has them), already uniformly spread, so also the
// hash pmap's trie uses. A lookup's timing depends only on this keyed
// hash of what the client sent, which the client cannot compute and
// which says nothing about a stored key; the key itself is compared in
// constant time (inChain). It replaced a SHA-256 of the key, which cost
// ~2.4K instructions per request for no added protection: an unkeyed
// digest is one the client can compute.
func digestPrefix(key []byte) uint64 { return maphash.Bytes(keySeed, key) }

// keyBytes is a view of a stored key as bytes, for digestPrefix and
// inChain; it must not be written to.
func keyBytes(key string) []byte { return unsafe.Slice(unsafe.StringData(key), len(key)) }

func hashPrefix(p uint64) uint64 { return p }

// find returns the entry of key, whose digestPrefix is p, or nil.
func (x *keyIndex) find(p uint64, key []byte) *entry {
	e, _ := x.keys.Get(p)
	return inChain(e, key)
}

// inChain returns the entry of key in the chain e, or nil.
func inChain(e *entry, key []byte) *entry {
	for ; e != nil; e = e.next {
		if subtle.ConstantTimeCompare(keyBytes(e.key), key) == 1 {
			return e
		}
	}
	return nil
}

// withoutEntry returns the chain e without consumer c's entry of key,
// copying the entries before it (the chain is shared with the running
// index).
func withoutEntry(e *entry, c *sdk.Consumer, key string) *entry {
	if e == nil {
		return nil
	}
	if e.consumer == c && e.key == key {
		return e.next
	}
	rest := withoutEntry(e.next, c, key)
	if rest == e.next {
		return e
	}
	cp := *e
	cp.next = rest
	return &cp
}

var idSeed = maphash.MakeSeed()

func hashID(s string) uint64 { return maphash.String(idSeed, s) }

func buildIndex(cs *sdk.Consumers) (*keyIndex, error) {
	// The entries in one array (never grown past n, so the pointers into
	// it hold): a million keys allocated one by one cost a third more.
	n := 0
	for _, cons := range cs.All() {
		n += len(cons.Credentials.Of("key_auth"))
	}
	x := &keyIndex{keys: pmap.New[uint64, *entry](hashPrefix, n), ids: pmap.New[string, string](hashID, 0)}
	b := indexBuild{x: x, cs: cs, arena: make([]entry, 0, n)}
	for _, cons := range cs.All() {
		b.add(cons)
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return x, nil
}

// With is the index of the consumers in which old is replaced by c.
func (x *keyIndex) With(old, c *sdk.Consumer, next *sdk.Consumers) (sdk.ConsumerIndex, error) {
	y := *x
	if old != nil {
		for _, raw := range old.Credentials.Of("key_auth") {
			cred, err := decodeCredential(raw)
			if err != nil || cred.Key == "" {
				continue // never indexed
			}
			p := digestPrefix(keyBytes(cred.Key))
			if head, ok := y.keys.Get(p); ok {
				switch rest := withoutEntry(head, old, cred.Key); {
				case rest == nil:
					y.keys = y.keys.Without(p)
				case rest != head:
					y.keys = y.keys.With(p, rest)
				}
			}
			if cred.ID != "" {
				if owner, ok := y.ids.Get(cred.ID); ok && owner == old.Name {
					y.ids = y.ids.Without(cred.ID)
				}
			}
		}
	}
	if c != nil {
		b := indexBuild{x: &y, cs: next, persistent: true}
		b.add(c)
		if len(b.errs) > 0 {
			return nil, errors.Join(b.errs...)
		}
	}
	return &y, nil
}

// indexBuild adds consumers' keys to an index, collecting every error:
// every bad credential is reported, not just the first.
type indexBuild struct {
	x          *keyIndex
	cs         *sdk.Consumers // the set the index is for
	persistent bool           // With: x's maps are shared with the running index
	arena      []entry
	errs       []error
}

func (b *indexBuild) bad(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

func (b *indexBuild) add(cons *sdk.Consumer) {
	x := b.x
	for i, raw := range cons.Credentials.Of("key_auth") {
		cred, err := decodeCredential(raw)
		if err != nil {
			b.errs = append(b.errs, confval.Prefix(fmt.Sprintf("consumer %q: key_auth[%d]: ", cons.Name, i), err))
			continue
		}
		if cred.Key == "" {
			b.bad("consumer %q: key_auth[%d]: key must be set", cons.Name, i)
			continue
		}
		p := digestPrefix(keyBytes(cred.Key))
		head, _ := x.keys.Get(p)
		if prev := inChain(head, keyBytes(cred.Key)); prev != nil {
			if prev.consumer == cons {
				b.bad("consumer %q: key_auth[%d] repeats the key of key_auth[%d]; remove one", cons.Name, i, firstWithKey(cons, cred.Key))
				continue
			}
			b.bad("consumers %q and %q share an API key; every key must be unique", prev.consumer.Name, cons.Name)
			continue
		}
		id := cred.ID
		if id == "" {
			id = cons.Name + "#" + strconv.Itoa(i)
			// Added to a running index, the default id may be one
			// another consumer wrote out.
			if other, dup := x.ids.Get(id); b.persistent && dup && other != cons.Name {
				b.bad("consumer %q: key_auth[%d]: its default id %q is already used by consumer %q; ids must be unique", cons.Name, i, id, other)
				continue
			}
		} else {
			other, dup := x.ids.Get(id)
			if !dup {
				other, dup = defaultIDOwner(b.cs, id)
			}
			if dup {
				b.bad("consumer %q: key_auth[%d]: id %q is already used by consumer %q; ids must be unique", cons.Name, i, id, other)
				continue
			}
			if b.persistent {
				x.ids = x.ids.With(id, cons.Name)
			} else {
				x.ids.Set(id, cons.Name)
			}
		}
		var e *entry
		if len(b.arena) < cap(b.arena) {
			b.arena = append(b.arena, entry{key: cred.Key, consumer: cons, id: id, next: head})
			e = &b.arena[len(b.arena)-1]
		} else {
			e = &entry{key: cred.Key, consumer: cons, id: id, next: head}
		}
		if b.persistent {
			x.keys = x.keys.With(p, e)
		} else {
			x.keys.Set(p, e)
		}
	}
}

// decodeCredential reads one key_auth credential.
func decodeCredential(raw []byte) (Credential, error) {
	var cred Credential
	if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
		return cred, errors.New(`a credential is an object like {key: "..."}`)
	}
	if key, ok := plainKeyOnly(raw); ok {
		cred.Key = key
		return cred, nil
	}
	err := sdk.DecodeConfig(raw, &cred)
	return cred, err
}

// defaultIDOwner reports whether id is the default id of a credential
// that has none written ("CONSUMER#INDEX"), and names its consumer.
func defaultIDOwner(cs *sdk.Consumers, id string) (string, bool) {
	at := strings.LastIndexByte(id, '#')
	if at < 0 {
		return "", false
	}
	i, err := strconv.Atoi(id[at+1:])
	if err != nil || i < 0 || strconv.Itoa(i) != id[at+1:] {
		return "", false
	}
	c := cs.Get(id[:at])
	if c == nil || i >= len(c.Credentials.Of("key_auth")) {
		return "", false
	}
	var cred Credential
	if err := sdk.DecodeConfig(c.Credentials.Of("key_auth")[i], &cred); err != nil || cred.Key == "" || cred.ID != "" {
		return "", false
	}
	return c.Name, true
}

// firstWithKey is the place of the first of cons's key_auth credentials
// holding key. Only the error for a repeated key needs it, so the index
// does not keep places: it would cost every key of a large config.
func firstWithKey(cons *sdk.Consumer, key string) int {
	for i, raw := range cons.Credentials.Of("key_auth") {
		var cred Credential
		if err := sdk.DecodeConfig(raw, &cred); err == nil && cred.Key == key {
			return i
		}
	}
	return -1
}

// plainKeyOnly reads a credential written exactly as {"key":"K"} with no
// escapes in K, the canonical form the config reader gives the usual
// credential, without a JSON decoder: decoding is most of the cost of
// indexing a million keys. Anything else is left to sdk.DecodeConfig.
func plainKeyOnly(raw []byte) (string, bool) {
	const prefix, suffix = `{"key":"`, `"}`
	if !bytes.HasPrefix(raw, []byte(prefix)) || !bytes.HasSuffix(raw, []byte(suffix)) || len(raw) < len(prefix)+len(suffix) {
		return "", false
	}
	k := raw[len(prefix) : len(raw)-len(suffix)]
	for _, c := range k {
		// A quote or backslash means escapes or more fields; control
		// characters and non-ASCII are left to the decoder's rules.
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	// A view, not a copy: the raw credential is immutable and lives as
	// long as its consumer, which the index entry holds.
	return unsafe.String(unsafe.SliceData(k), len(k)), true
}
