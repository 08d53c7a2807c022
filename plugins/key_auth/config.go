package keyauth

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

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
	key      []byte
	consumer *sdk.Consumer
	id       string
}

// indexKeys decodes every consumer's key_auth credentials into a map keyed
// by the SHA-256 of the key. The digest is what makes the lookup safe to do
// with an ordinary map: how long a lookup takes depends only on the digest
// of what the client sent, which tells an attacker nothing about any stored
// key, so an attacker cannot learn a key byte by byte from timing.
//
// Every key_auth instance of a snapshot (one per route using it) sees the
// same consumers, so the last index is cached by the *sdk.Consumers it was
// built from: a config with many routes hashes each key once per load, not
// once per route. Indexes are read-only once built, hence safe to share.
func indexKeys(cs *sdk.Consumers) (map[[sha256.Size]byte]*entry, error) {
	lastIndex.Lock()
	defer lastIndex.Unlock()
	if lastIndex.cs != cs || cs == nil {
		lastIndex.keys, lastIndex.err = buildIndex(cs)
		lastIndex.cs = cs
	}
	return lastIndex.keys, lastIndex.err
}

var lastIndex struct {
	sync.Mutex
	cs   *sdk.Consumers
	keys map[[sha256.Size]byte]*entry
	err  error
}

func buildIndex(cs *sdk.Consumers) (map[[sha256.Size]byte]*entry, error) {
	// Every bad credential is reported, not just the first.
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// Sized up front: growing three maps of a million keys step by step
	// cost a third of building them.
	n := 0
	for _, cons := range cs.All() {
		n += len(cons.Credentials["key_auth"])
	}
	keys := make(map[[sha256.Size]byte]*entry, n)
	// The entries in one array (never grown past n, so the pointers into
	// it hold), and only ids written out in a set: a default id
	// ("CONSUMER#INDEX") is unique with its consumer's name, so only an
	// explicit id can collide, with another or with a default one.
	entries := make([]entry, 0, n)
	ids := map[string]string{}
	for _, cons := range cs.All() {
		for i, raw := range cons.Credentials["key_auth"] {
			if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
				bad("consumer %q: key_auth[%d]: a credential is an object like {key: \"...\"}", cons.Name, i)
				continue
			}
			var cred Credential
			if key, ok := plainKeyOnly(raw); ok {
				cred.Key = key
			} else if err := sdk.DecodeConfig(raw, &cred); err != nil {
				errs = append(errs, confval.Prefix(fmt.Sprintf("consumer %q: key_auth[%d]: ", cons.Name, i), err))
				continue
			}
			if cred.Key == "" {
				bad("consumer %q: key_auth[%d]: key must be set", cons.Name, i)
				continue
			}
			h := sha256.Sum256([]byte(cred.Key))
			if prev, dup := keys[h]; dup {
				if prev.consumer == cons {
					bad("consumer %q: key_auth[%d] repeats the key of key_auth[%d]; remove one", cons.Name, i, firstWithKey(cons, cred.Key))
					continue
				}
				bad("consumers %q and %q share an API key; every key must be unique", prev.consumer.Name, cons.Name)
				continue
			}
			id := cred.ID
			if id == "" {
				id = cons.Name + "#" + strconv.Itoa(i)
			} else {
				other, dup := ids[id]
				if !dup {
					other, dup = defaultIDOwner(cs, id)
				}
				if dup {
					bad("consumer %q: key_auth[%d]: id %q is already used by consumer %q; ids must be unique", cons.Name, i, id, other)
					continue
				}
				ids[id] = cons.Name
			}
			entries = append(entries, entry{key: []byte(cred.Key), consumer: cons, id: id})
			keys[h] = &entries[len(entries)-1]
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return keys, nil
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
	if c == nil || i >= len(c.Credentials["key_auth"]) {
		return "", false
	}
	var cred Credential
	if err := sdk.DecodeConfig(c.Credentials["key_auth"][i], &cred); err != nil || cred.Key == "" || cred.ID != "" {
		return "", false
	}
	return c.Name, true
}

// firstWithKey is the place of the first of cons's key_auth credentials
// holding key. Only the error for a repeated key needs it, so the index
// does not keep places: it would cost every key of a large config.
func firstWithKey(cons *sdk.Consumer, key string) int {
	for i, raw := range cons.Credentials["key_auth"] {
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
	return string(k), true
}
