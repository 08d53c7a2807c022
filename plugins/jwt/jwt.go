// Package jwt is Weir's `jwt` plugin: it verifies a JSON Web Token (RFC
// 7519) signed with one of the algorithms of the instance's allow-list,
// with a key from a consumer's credentials (matched by the token's iss, or
// the claim named by key_claim_name) or from a JWKS URL refreshed in the
// background, and identifies the request's consumer.
//
// Signature checks other than HMAC are golang-jwt/jwt/v5's; JWK parsing
// is MicahParks/jwkset's. What this package adds is the gateway's part: a
// linear-time shape check before any parsing, header and claims read in
// place without maps (jws.go, held to golang-jwt's verdicts by a
// differential fuzz test), refusal of keys carried in the token header,
// strict algorithm/key-type pairing, a single-flight and rate-limited
// JWKS refresher, and a bounded cache of verified tokens.
package jwt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/weirgw/weir/plugins/internal/bearer"
	"github.com/weirgw/weir/plugins/internal/promlabel"
	"github.com/weirgw/weir/sdk"
)

func init() {
	sdk.Register(sdk.Factory{Name: "jwt", New: New})
}

// claimHeader is one claims_to_headers entry.
type claimHeader struct {
	claim, header string
}

// filter is one jwt plugin instance. It is immutable after New except for
// the cache and the JWKS source, which are safe for concurrent use.
type filter struct {
	tokens bearer.Sources
	hide   bool

	allowed  []string
	keyClaim string
	// creds is the index built with the filter; a request reads the
	// snapshot's (Ctx.Consumers) instead when there is one, so that a
	// filter kept across a change of consumers sees the change.
	creds         *credIndex
	jwks          *jwksSource
	issuer        string
	consumerClaim string
	leeway        time.Duration
	maxTokenBytes int
	claimHeaders  []claimHeader

	requireExp bool
	audiences  []string
	now        func() time.Time

	cache    *tokenCache
	cacheTTL time.Duration

	fails     *bearer.Failures[reason]
	cacheHit  *metrics.Counter
	cacheMiss *metrics.Counter
}

// New builds a jwt filter from its config. It decodes and checks every key
// and consumer credential and prepares keys, parser and metrics; it does
// no I/O (the JWKS is first fetched by Start).
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	var cs *sdk.Consumers
	if b != nil {
		cs = b.Consumers
	}
	creds, err := sdk.IndexOf[*credIndex](cs, slot)
	if err != nil {
		return nil, err
	}
	if err := creds.checkAlgorithms(cfg.Algorithms); err != nil {
		return nil, err
	}
	route := ""
	if b != nil {
		route = b.Route
	}
	f := &filter{
		tokens:        bearer.NewSources(cfg.Header, cfg.Cookie, ""),
		hide:          cfg.HideCredentials,
		allowed:       cfg.Algorithms,
		keyClaim:      cfg.KeyClaimName,
		creds:         creds,
		issuer:        cfg.Issuer,
		consumerClaim: cfg.ConsumerClaim,
		leeway:        cfg.ClockSkew.D(),
		maxTokenBytes: cfg.MaxTokenBytes,
		now:           time.Now,
		cache:         newTokenCache(*cfg.CacheSize),
		cacheTTL:      cfg.CacheTTL.D(),
		fails:         newFailures(route, cfg.Realm),
		cacheHit:      metrics.GetOrCreateCounter(`weir_jwt_cache_total{route=` + promlabel.Quote(route) + `,result="hit"}`),
		cacheMiss:     metrics.GetOrCreateCounter(`weir_jwt_cache_total{route=` + promlabel.Quote(route) + `,result="miss"}`),
	}
	for claim, h := range cfg.ClaimsToHeaders {
		f.claimHeaders = append(f.claimHeaders, claimHeader{claim: claim, header: h})
	}
	// A stable order makes the upstream request deterministic.
	sortClaimHeaders(f.claimHeaders)
	if cfg.JWKSURL != "" {
		var log *slog.Logger
		if b != nil {
			log = b.Log
		}
		f.jwks = newJWKSSource(cfg, route, log)
	}
	f.requireExp = *cfg.RequireExp
	f.audiences = cfg.Audiences
	return f, nil
}

// CheckConsumers refuses consumers whose credentials f does not take
// (an algorithm outside its allow-list), as New does (sdk.ConsumersChecker).
func (f *filter) CheckConsumers(cs *sdk.Consumers) error {
	creds, err := sdk.IndexOf[*credIndex](cs, slot)
	if err != nil {
		return err
	}
	return creds.checkAlgorithms(f.allowed)
}

// Start fetches the JWKS (waiting at most jwks_timeout for the first
// answer) and starts its background refresh.
func (f *filter) Start() error {
	if f.jwks != nil {
		f.jwks.start()
	}
	return nil
}

// Close stops the JWKS refresh and waits for it.
func (f *filter) Close() error {
	if f.jwks != nil {
		f.jwks.close()
	}
	return nil
}

// OnRequest authenticates the request or answers 401 (503 while JWKS keys
// have never been loaded).
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	tok, src := f.tokens.Token(c.Request())
	if tok == nil {
		return f.fails.Fail(c, reasonMissing), nil
	}
	if len(tok) > f.maxTokenBytes {
		return f.fails.Fail(c, reasonTooLarge), nil
	}
	var id *identity
	x := f.index(c)
	if f.cache != nil {
		// Only verified tokens are cached, so a hit needs no shape check;
		// one whose consumer has changed since is verified again.
		if id = f.cache.get(tok, f.now().UnixNano()); id != nil && x.holds(id) {
			f.cacheHit.Inc()
		} else {
			id = nil
			f.cacheMiss.Inc()
		}
	}
	if id == nil {
		if !wellFormed(tok) {
			return f.fails.Fail(c, reasonMalformed), nil
		}
		var r reason
		if id, r = f.verify(tok, x); id == nil {
			return f.fails.Fail(c, r), nil
		}
		if f.cache != nil {
			f.cache.put(tok, id, f.now().UnixNano())
		}
	}
	f.apply(c, id, src)
	return sdk.Continue, nil
}

// index is the credential index of the request's consumers.
func (f *filter) index(c *sdk.Ctx) *credIndex {
	if x, ok := c.Consumers.Indexed(slot).(*credIndex); ok {
		return x
	}
	return f.creds
}

// credentialFor returns the consumer credential of x selected by the
// token's key claim (a string), or nil.
func (f *filter) credentialFor(claims jsonObject, x *credIndex) *credential {
	if x.byIssuer.Len() == 0 {
		return nil
	}
	v, _ := stringOf(claims.get(f.keyClaim))
	if v == "" {
		return nil
	}
	return x.credential(v)
}

func (f *filter) algAllowed(alg string) bool {
	for _, a := range f.allowed {
		if a == alg {
			return true
		}
	}
	return false
}

// identityOf computes what a verified token grants. Everything it keeps
// is copied out of claims, which is a view of a pooled buffer.
func (f *filter) identityOf(claims jsonObject, x *credIndex) *identity {
	id := &identity{}
	if cred := f.credentialFor(claims, x); cred != nil {
		id.consumer, id.credential, id.named = cred.consumer, cred.issuer, cred.consumer.Name
	} else {
		sub, _ := stringOf(claims.get("sub"))
		id.credential = strings.Clone(sub)
		if f.consumerClaim != "" {
			if name, ok := stringOf(claims.get(f.consumerClaim)); ok {
				if id.consumer = x.cs.Named(name); id.consumer != nil {
					id.named = id.consumer.Name
				} else {
					id.named = strings.Clone(name)
				}
			}
		}
	}
	id.scopes = scopesOf(claims)
	if len(f.claimHeaders) > 0 {
		id.headerVals = make([]string, len(f.claimHeaders))
		for i, ch := range f.claimHeaders {
			if v := claims.get(ch.claim); v != nil {
				id.headerVals[i] = headerValueOf(v)
			}
		}
	}
	now := f.now()
	until := now.Add(f.cacheTTL)
	if exp, has, err := numericDate(claims, "exp"); err == nil && has {
		if e := exp.Add(f.leeway); e.Before(until) {
			until = e
		}
	}
	id.validUntil = until.UnixNano()
	return id
}

// apply identifies the request and sets the claim headers.
func (f *filter) apply(c *sdk.Ctx, id *identity, src bearer.Source) {
	c.SetConsumer(id.consumer, id.credential)
	for _, s := range id.scopes {
		c.AddScope(s)
	}
	h := &c.Request().Header
	for i := range f.claimHeaders {
		name := f.claimHeaders[i].header
		// Client-sent copies go first, so only the token speaks.
		h.Del(name)
		if v := id.headerVals[i]; v != "" {
			h.Set(name, v)
		}
	}
	if f.hide {
		f.tokens.Hide(c.Request(), src)
	}
}

// scopesOf reads OAuth scopes from `scope` (space-separated, RFC 8693 §4.2)
// or `scp` (a list, or a string, as some issuers write it).
func scopesOf(claims jsonObject) []string {
	if s, ok := stringOf(claims.get("scope")); ok {
		return strings.Fields(strings.Clone(s))
	}
	scp := claims.get("scp")
	if s, ok := stringOf(scp); ok {
		return strings.Fields(strings.Clone(s))
	}
	var out []string
	if !eachString(scp, func(q []byte) {
		if s, ok := stringOf(q); ok && s != "" {
			out = append(out, strings.Clone(s))
		}
	}) {
		return nil
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// headerValueOf renders a raw claim for a header: strings, numbers and
// booleans in place; lists and objects decoded as encoding/json would and
// rendered by headerValue.
func headerValueOf(v []byte) string {
	switch {
	case v[0] == '"':
		s, _ := stringOf(v)
		return dropControls(strings.Clone(s))
	case isNumber(v):
		return string(v)
	case v[0] == 't':
		return "true"
	case v[0] == 'f':
		return "false"
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if dec.Decode(&x) != nil {
		return ""
	}
	return headerValue(x)
}

// headerValue renders a claim for a header: strings as they are, numbers
// in their JSON spelling, lists of strings comma-separated, anything else
// as compact JSON. Control characters are dropped so a claim can never
// split or end a header line.
func headerValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case bool:
		s = fmt.Sprint(x)
	case []any:
		if joined, ok := joinStrings(x); ok {
			s = joined
			break
		}
		s = compactJSON(v)
	default:
		s = compactJSON(v)
	}
	return dropControls(s)
}

// dropControls removes control characters, so a claim can never split or
// end a header line.
func dropControls(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func joinStrings(list []any) (string, bool) {
	parts := make([]string, 0, len(list))
	for _, e := range list {
		str, ok := e.(string)
		if !ok {
			return "", false
		}
		parts = append(parts, str)
	}
	return strings.Join(parts, ","), true
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func sortClaimHeaders(list []claimHeader) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j].claim < list[j-1].claim; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
}
