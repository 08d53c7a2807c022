// Package keyauth is the key_auth plugin: it identifies the consumer of a
// request by an API key sent in a header (default X-API-Key) or a query
// parameter (default apikey), and answers 401 when the key is missing or
// unknown.
//
// Keys come from the consumers' `credentials.key_auth` lists and are indexed
// when the config loads; a request costs one SHA-256 of the presented key,
// one map lookup and one constant-time comparison, without allocating.
package keyauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/rawquery"
	"github.com/weirgw/weir/sdk"
)

func init() { sdk.Register(sdk.Factory{Name: "key_auth", New: New}) }

// anonymousCredential is the credential ID given with the anonymous consumer.
const anonymousCredential = "anonymous"

// challenge is the WWW-Authenticate value of every 401 (RFC 9110 §11.6.1
// requires one on a 401). "Key" is not a registered scheme; it is what
// clients of API-key gateways expect to see.
var challenge = []byte(`Key realm="weir"`)

type filter struct {
	headers []string
	// canon is headers in the form fasthttp stores request header names
	// in (the gateway never turns that normalization off), looked up
	// with PeekCanonical: Peek would normalize the name on every request
	// (~800 instructions).
	canon   [][]byte
	queries []string
	hide    bool
	anon    *sdk.Consumer
	// keys is the index built with the filter; a request reads the
	// snapshot's (Ctx.Consumers) instead when there is one, so that a
	// filter kept across a change of consumers sees the change.
	keys *keyIndex
	// redis is nil unless redis_lookup is set.
	redis *redisLookup

	missing   *metrics.Counter
	invalid   *metrics.Counter
	anonymous *metrics.Counter
}

// New validates the config, indexes the consumers' keys and resolves the
// anonymous consumer.
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	// The settings, the consumers' keys and the anonymous consumer are
	// each checked and the errors joined: one run shows them all.
	headers, queries, errS := sources(&cfg)
	keys, errK := sdk.IndexOf[*keyIndex](b.Consumers, slot)
	var errA error
	f := &filter{headers: headers, queries: queries, hide: cfg.HideCredentials, keys: keys}
	for _, h := range headers {
		f.canon = append(f.canon, fasthttp.AppendNormalizedHeaderKey(nil, h))
	}
	if cfg.Anonymous != "" {
		if f.anon = b.Consumers.Get(cfg.Anonymous); f.anon == nil {
			errA = fmt.Errorf("anonymous: no consumer named %q; add it under consumers or fix the name", cfg.Anonymous)
		}
	}
	route := b.Route
	if route == "" {
		route = "_global"
	}
	var errR error
	if cfg.RedisLookup != nil {
		f.redis, errR = newRedisLookup(b, cfg.RedisLookup, route)
	}
	if err := errors.Join(errS, errK, errA, errR); err != nil {
		return nil, err
	}
	name := func(reason string) string {
		return fmt.Sprintf(`weir_auth_failures_total{plugin="key_auth",route=%q,reason=%q}`, route, reason)
	}
	f.missing = metrics.GetOrCreateCounter(name("missing"))
	f.invalid = metrics.GetOrCreateCounter(name("invalid"))
	f.anonymous = metrics.GetOrCreateCounter(fmt.Sprintf(`weir_auth_anonymous_total{plugin="key_auth",route=%q}`, route))
	return f, nil
}

// OnRequest identifies the consumer or answers 401. It does not allocate.
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	// With anonymous set, auth plugins combine as a logical OR (as in
	// Kong): a consumer already identified by an earlier plugin stands.
	if f.anon != nil {
		if cur := c.Consumer(); cur != nil && cur != f.anon {
			f.strip(c)
			return sdk.Continue, nil
		}
	}
	key := f.findKey(c)
	var e *entry
	if len(key) > 0 {
		// find compares the key too, in constant time, so that a digest
		// prefix shared by another key leaks nothing about the stored one.
		e = f.index(c).find(digestPrefix(key), key)
	}
	if e == nil && len(key) > 0 && f.redis != nil {
		re, res := f.redis.lookup(key)
		switch res {
		case lookupFound:
			c.SetConsumer(re.consumer, re.id)
			f.strip(c)
			return sdk.Continue, nil
		case lookupFailed:
			// Without Redis's answer the key is neither admitted nor
			// given to anonymous: the caller holds a key, and may
			// retry.
			if f.redis.onFailure == 401 {
				f.invalid.Inc()
				c.SetResponseHeader("WWW-Authenticate", challenge)
				return c.Fail(401, "invalid API key"), nil
			}
			return c.Fail(503, "credential store unavailable"), nil
		}
	}
	// key is a view into the request and is not used past this point:
	// strip may delete what it points into.
	switch {
	case e != nil:
		c.SetConsumer(e.consumer, e.id)
	case f.anon != nil:
		f.anonymous.Inc()
		c.SetConsumer(f.anon, anonymousCredential)
	case len(key) == 0:
		f.missing.Inc()
		c.SetResponseHeader("WWW-Authenticate", challenge)
		return c.Fail(401, "missing API key"), nil
	default:
		f.invalid.Inc()
		c.SetResponseHeader("WWW-Authenticate", challenge)
		return c.Fail(401, "invalid API key"), nil
	}
	f.strip(c)
	return sdk.Continue, nil
}

// index is the key index of the request's consumers.
func (f *filter) index(c *sdk.Ctx) *keyIndex {
	if x, ok := c.Consumers.Indexed(slot).(*keyIndex); ok {
		return x
	}
	return f.keys
}

// findKey returns the first non-empty key among the configured headers, then
// query parameters. An empty value counts as absent.
func (f *filter) findKey(c *sdk.Ctx) []byte {
	req := c.Request()
	for _, h := range f.canon {
		if v := req.Header.PeekCanonical(h); len(v) > 0 {
			return v
		}
	}
	if len(f.queries) == 0 {
		return nil
	}
	args := req.URI().QueryArgs()
	for _, q := range f.queries {
		if v := args.Peek(q); len(v) > 0 {
			return v
		}
	}
	return nil
}

// queryBufPool holds scratch buffers for rebuilding a query string; a buffer
// is owned by strip between Get and Put only.
var queryBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// strip removes every configured key header and query parameter when
// hide_credentials is set, so that neither the key used nor another one
// sent alongside it reaches the upstream.
func (f *filter) strip(c *sdk.Ctx) {
	if !f.hide {
		return
	}
	req := c.Request()
	for _, h := range f.headers {
		req.Header.Del(h)
	}
	if len(f.queries) == 0 {
		return
	}
	uri := req.URI()
	buf := queryBufPool.Get().(*[]byte)
	// rawquery.Strip keeps the other parameters exactly as the client
	// encoded them and compares names decoded, as Args.Peek above does, so
	// a client cannot hide a key from stripping by percent-encoding its
	// name.
	if out, removed := rawquery.Strip((*buf)[:0], uri.QueryString(), f.queries); removed {
		// SetQueryStringBytes copies and drops the parsed arguments, so
		// QueryString(), QueryArgs() and RequestURI() all agree afterwards.
		uri.SetQueryStringBytes(out)
		*buf = out
	}
	queryBufPool.Put(buf)
}
