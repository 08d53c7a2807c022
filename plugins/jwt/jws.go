package jwt

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"hash"
	"math"
	"sync"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/weirgw/weir/sdk"
)

// A token is verified here in the order golang-jwt's ParseWithClaims
// checked it (so a token refused for two reasons gets the same one), but
// without decoding the header and claims into maps: they stay JSON in a
// pooled buffer and the few members the gateway reads are looked up in
// place (jsonscan.go). Signatures other than HMAC are still checked by
// golang-jwt's signing methods; HMAC uses a per-credential pool of keyed
// hashes. The differential fuzz test (FuzzSameAsGoJWT) holds this to the
// library's verdicts.

// jwsB64 is RFC 7515 §2's base64url without padding, strict about the
// unused bits of the last character (golang-jwt's WithStrictDecoding).
var jwsB64 = base64.RawURLEncoding.Strict()

// jws is a compact JWS split and decoded.
type jws struct {
	signingInput []byte // header.payload: a view of the request
	header       jsonObject
	claims       jsonObject
	sig          []byte
	alg          string
	method       gojwt.SigningMethod
}

// parseState is the storage of one verification, reused (parseStates):
// the decoded segments and the header's and claims' member indexes,
// which the jws holds views of.
type parseState struct {
	buf            []byte
	header, claims []member
}

// keepMembers is the storage to reuse after an index grew from old to
// got: the grown one, unless a token with many members made it large.
func keepMembers(old, got []member) []member {
	if cap(got) > 64 {
		return old
	}
	return got[:0]
}

var parseStates = sync.Pool{New: func() any {
	return &parseState{buf: make([]byte, 0, 1024), header: make([]member, 0, 8), claims: make([]member, 0, 16)}
}}

// errClaimType is a registered claim of the wrong JSON type.
var errClaimType = errors.New("claim of the wrong type")

// verify runs the JOSE checks on a well-formed token and returns the
// identity it carries, or the reason it was refused.
func (f *filter) verify(tok []byte, x *credIndex) (*identity, reason) {
	ps := parseStates.Get().(*parseState)
	defer parseStates.Put(ps)
	var t jws
	if r := t.parse(tok, ps); r != 0 {
		return nil, r
	}
	if !f.algAllowed(t.alg) {
		return nil, reasonBadAlg
	}
	key, cred, r := f.keyFor(&t, x)
	if r != 0 {
		return nil, r
	}
	if !t.verifySignature(key, cred) {
		return nil, reasonBadSignature
	}
	if r := f.validateClaims(t.claims); r != 0 {
		return nil, r
	}
	return f.identityOf(t.claims, x), 0
}

// parse splits tok (already wellFormed) and decodes its segments into
// ps. It returns 0 or the refusal.
func (t *jws) parse(tok []byte, ps *parseState) reason {
	d1 := bytes.IndexByte(tok, '.')
	d2 := d1 + 1 + bytes.IndexByte(tok[d1+1:], '.')
	t.signingInput = tok[:d2]
	need := jwsB64.DecodedLen(len(tok))
	if cap(ps.buf) < need {
		ps.buf = make([]byte, need)
	}
	buf := ps.buf[:need]
	hdr, ok := decodeSeg(buf, tok[:d1])
	if !ok {
		return reasonMalformed
	}
	buf = buf[len(hdr):]
	h, hNull, ok := parseObject(hdr, ps.header)
	if !ok {
		return reasonMalformed
	}
	ps.header = keepMembers(ps.header, h.members)
	payload, ok := decodeSeg(buf, tok[d1+1:d2])
	if !ok {
		return reasonMalformed
	}
	buf = buf[len(payload):]
	// golang-jwt's json.Decoder stopped after the first value and ignored
	// what followed it; trailing bytes after the claims are refused here.
	c, _, ok := parseObject(payload, ps.claims)
	if !ok {
		return reasonMalformed
	}
	ps.claims = keepMembers(ps.claims, c.members)
	t.header, t.claims = h, c
	if hNull {
		return reasonBadAlg // no alg
	}
	alg, ok := stringOf(h.get("alg"))
	if !ok {
		return reasonBadAlg
	}
	if t.method = gojwt.GetSigningMethod(alg); t.method == nil {
		return reasonBadAlg // "none" spelled otherwise, "XS256"
	}
	t.alg = t.method.Alg()
	if t.sig, ok = decodeSeg(buf, tok[d2+1:]); !ok {
		return reasonMalformed
	}
	return 0
}

func decodeSeg(dst, seg []byte) ([]byte, bool) {
	n, err := jwsB64.Decode(dst, seg)
	return dst[:n], err == nil
}

// keyFor picks the key that verifies t: never one the token carries (RFC
// 8725 §3.10), from the credential its key claim names, else from the
// JWKS. cred is set when the key is a consumer credential's.
func (f *filter) keyFor(t *jws, x *credIndex) (key any, cred *credential, r reason) {
	// No JWS extension is understood, so "crit" must fail (RFC 7515
	// §4.1.11).
	for _, h := range [...]string{"jwk", "jku", "x5u", "x5c", "crit"} {
		if t.header.has(h) {
			return nil, nil, reasonForbiddenHeader
		}
	}
	if cred = f.credentialFor(t.claims, x); cred != nil {
		// One credential, one algorithm: HS256 against an RS256
		// credential is the key-confusion attack (RFC 8725 §2.1).
		if t.alg != cred.alg {
			return nil, nil, reasonBadAlg
		}
		return cred.key, cred, 0
	}
	if f.jwks == nil {
		return nil, nil, reasonUnknownKey
	}
	if isHMAC(t.alg) {
		return nil, nil, reasonBadAlg // a JWKS never supplies shared secrets
	}
	if f.issuer != "" {
		if iss, _ := stringOf(t.claims.get("iss")); iss != f.issuer {
			return nil, nil, reasonBadIssuer
		}
	}
	kidV := t.header.get("kid")
	kid, isString := stringOf(kidV)
	if kidV != nil && !isString {
		return nil, nil, reasonMalformed
	}
	key, err := f.jwks.lookup(kid, kidV != nil, t.alg)
	switch {
	case errors.Is(err, errJWKSUnavailable):
		return nil, nil, reasonJWKSUnavailable
	case err != nil:
		return nil, nil, reasonUnknownKey
	}
	return key, nil, 0
}

// verifySignature checks t's signature with key (a VerificationKeySet:
// any of its keys).
func (t *jws) verifySignature(key any, cred *credential) bool {
	if cred != nil && cred.macs != nil {
		return cred.verifyMAC(t.signingInput, t.sig)
	}
	input := sdk.B2S(t.signingInput)
	if set, ok := key.(gojwt.VerificationKeySet); ok {
		for _, k := range set.Keys {
			if t.method.Verify(input, t.sig, k) == nil {
				return true
			}
		}
		return false
	}
	return t.method.Verify(input, t.sig, key) == nil
}

// hmacPool returns a pool of hashes keyed with secret for alg (HS256,
// HS384 or HS512), or nil for another alg.
func hmacPool(alg string, secret []byte) *sync.Pool {
	var h crypto.Hash
	switch alg {
	case "HS256":
		h = crypto.SHA256
	case "HS384":
		h = crypto.SHA384
	case "HS512":
		h = crypto.SHA512
	default:
		return nil
	}
	return &sync.Pool{New: func() any { return &macState{h: hmac.New(h.New, secret)} }}
}

// macState is a pooled keyed hash with room for its sum: a sum buffer on
// the stack would escape through the hash.Hash interface on every call.
type macState struct {
	h   hash.Hash
	sum [64]byte
}

// verifyMAC compares sig with the credential's HMAC of input in constant
// time.
func (c *credential) verifyMAC(input, sig []byte) bool {
	m := c.macs.Get().(*macState)
	m.h.Reset()
	m.h.Write(input)
	ok := hmac.Equal(sig, m.h.Sum(m.sum[:0]))
	c.macs.Put(m)
	return ok
}

// validateClaims checks exp, nbf, iat and aud as golang-jwt's validator
// did with the instance's options, and picks the reason the same way
// (expired first, then not yet valid, missing, audience, wrong types).
func (f *filter) validateClaims(c jsonObject) reason {
	now := f.now()
	var expired, notYet, missing, badAud, badType bool
	switch exp, has, err := numericDate(c, "exp"); {
	case err != nil:
		badType = true
	case !has:
		missing = f.requireExp
	default:
		expired = !now.Before(exp.Add(f.leeway))
	}
	if nbf, has, err := numericDate(c, "nbf"); err != nil {
		badType = true
	} else if has {
		notYet = now.Before(nbf.Add(-f.leeway))
	}
	if iat, has, err := numericDate(c, "iat"); err != nil {
		badType = true
	} else if has && now.Before(iat.Add(-f.leeway)) {
		notYet = true
	}
	if len(f.audiences) > 0 {
		switch r := f.checkAudience(c.get("aud")); r {
		case reasonMissingClaim:
			missing = true
		case reasonBadAudience:
			badAud = true
		case reasonInvalidClaims:
			badType = true
		}
	}
	switch {
	case expired:
		return reasonExpired
	case notYet:
		return reasonNotYetValid
	case missing:
		return reasonMissingClaim
	case badAud:
		return reasonBadAudience
	case badType:
		return reasonInvalidClaims
	}
	return 0
}

// numericDate reads a NumericDate claim (RFC 7519 §2) as golang-jwt did
// with json.Number: has is false when it is absent, a number is
// truncated to whole seconds, anything else (null included) is the wrong
// type.
func numericDate(c jsonObject, name string) (t time.Time, has bool, err error) {
	v := c.get(name)
	if v == nil {
		return t, false, nil
	}
	if !isNumber(v) {
		return t, false, errClaimType
	}
	round, frac := math.Modf(floatOf(v))
	return time.Unix(int64(round), int64(frac*1e9)).Truncate(gojwt.TimePrecision), true, nil
}

// checkAudience returns 0 when one of the token's audiences is accepted,
// else the reason: aud is a string or a list of strings; any other type
// reads as absent, a list with a non-string is the wrong type.
func (f *filter) checkAudience(v []byte) reason {
	n, match, bad := 0, false, false
	consider := func(s string) {
		n++
		for _, a := range f.audiences {
			match = match || a == s
		}
	}
	if s, ok := stringOf(v); ok {
		if s == "" {
			return reasonMissingClaim
		}
		consider(s)
	} else {
		var first string
		eachString(v, func(q []byte) {
			s, ok := stringOf(q)
			if !ok {
				bad = true
				return
			}
			if n == 0 {
				first = s
			}
			consider(s)
		})
		if bad {
			return reasonInvalidClaims
		}
		if n == 0 || n == 1 && first == "" {
			return reasonMissingClaim
		}
	}
	if !match {
		return reasonBadAudience
	}
	return 0
}
