package jwt

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// This file is the reference the in-place verifier (jws.go) is held to:
// the verification the plugin did before it, on golang-jwt's parser with
// map claims, kept verbatim in logic. FuzzSameAsGoJWT runs both on the
// same tokens and requires the same verdict, reason and identity.

// oracle verifies tok with golang-jwt as the plugin used to.
func (f *filter) oracle(tok []byte) (*identity, reason) {
	opts := []gojwt.ParserOption{
		gojwt.WithValidMethods(f.allowed),
		gojwt.WithLeeway(f.leeway),
		gojwt.WithIssuedAt(),
		gojwt.WithStrictDecoding(),
		gojwt.WithJSONNumber(),
		gojwt.WithTimeFunc(func() time.Time { return f.now() }),
	}
	if f.requireExp {
		opts = append(opts, gojwt.WithExpirationRequired())
	}
	if len(f.audiences) > 0 {
		opts = append(opts, gojwt.WithAudience(f.audiences...))
	}
	t, err := gojwt.NewParser(opts...).ParseWithClaims(string(tok), gojwt.MapClaims{}, f.oracleKey)
	if err != nil {
		return nil, f.oracleClassify(t, err)
	}
	return f.oracleIdentity(t.Claims.(gojwt.MapClaims)), 0
}

var (
	errOracleForbiddenHeader = errors.New("forbidden header")
	errOracleAlgMismatch     = errors.New("alg mismatch")
	errOracleBadIssuer       = errors.New("bad issuer")
)

func (f *filter) oracleKey(t *gojwt.Token) (any, error) {
	for _, h := range [...]string{"jwk", "jku", "x5u", "x5c", "crit"} {
		if _, ok := t.Header[h]; ok {
			return nil, errOracleForbiddenHeader
		}
	}
	alg := t.Method.Alg()
	if !f.algAllowed(alg) {
		return nil, errOracleAlgMismatch
	}
	claims := t.Claims.(gojwt.MapClaims)
	if cred := f.oracleCredential(claims); cred != nil {
		if alg != cred.alg {
			return nil, errOracleAlgMismatch
		}
		return cred.key, nil
	}
	if f.jwks == nil {
		return nil, errUnknownKey
	}
	if isHMAC(alg) {
		return nil, errOracleAlgMismatch
	}
	if f.issuer != "" {
		if iss, _ := claims["iss"].(string); iss != f.issuer {
			return nil, errOracleBadIssuer
		}
	}
	kidV, hasKid := t.Header["kid"]
	kid, isString := kidV.(string)
	if hasKid && !isString {
		return nil, gojwt.ErrTokenMalformed
	}
	return f.jwks.lookup(kid, hasKid, alg)
}

func (f *filter) oracleCredential(claims gojwt.MapClaims) *credential {
	if f.creds.byIssuer.Len() == 0 {
		return nil
	}
	v, _ := claims[f.keyClaim].(string)
	if v == "" {
		return nil
	}
	return f.creds.credential(v)
}

func (f *filter) oracleClassify(tok *gojwt.Token, err error) reason {
	switch {
	case errors.Is(err, errJWKSUnavailable):
		return reasonJWKSUnavailable
	case errors.Is(err, errOracleForbiddenHeader):
		return reasonForbiddenHeader
	case errors.Is(err, errOracleAlgMismatch):
		return reasonBadAlg
	case errors.Is(err, errOracleBadIssuer):
		return reasonBadIssuer
	case errors.Is(err, errUnknownKey):
		return reasonUnknownKey
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return reasonMalformed
	case errors.Is(err, gojwt.ErrTokenUnverifiable):
		return reasonBadAlg
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && !f.algAllowed(tok.Method.Alg()) {
			return reasonBadAlg
		}
		return reasonBadSignature
	case errors.Is(err, gojwt.ErrTokenExpired):
		return reasonExpired
	case errors.Is(err, gojwt.ErrTokenNotValidYet), errors.Is(err, gojwt.ErrTokenUsedBeforeIssued):
		return reasonNotYetValid
	case errors.Is(err, gojwt.ErrTokenRequiredClaimMissing):
		return reasonMissingClaim
	case errors.Is(err, gojwt.ErrTokenInvalidIssuer):
		return reasonBadIssuer
	case errors.Is(err, gojwt.ErrTokenInvalidAudience):
		return reasonBadAudience
	}
	return reasonInvalidClaims
}

func (f *filter) oracleIdentity(claims gojwt.MapClaims) *identity {
	id := &identity{}
	if cred := f.oracleCredential(claims); cred != nil {
		id.consumer, id.credential, id.named = cred.consumer, cred.issuer, cred.consumer.Name
	} else {
		id.credential, _ = claims["sub"].(string)
		if f.consumerClaim != "" {
			if name, ok := claims[f.consumerClaim].(string); ok {
				id.consumer, id.named = f.creds.cs.Named(name), name
			}
		}
	}
	id.scopes = oracleScopes(claims)
	if len(f.claimHeaders) > 0 {
		id.headerVals = make([]string, len(f.claimHeaders))
		for i, ch := range f.claimHeaders {
			if v, ok := claims[ch.claim]; ok {
				id.headerVals[i] = headerValue(v)
			}
		}
	}
	until := f.now().Add(f.cacheTTL)
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		if e := exp.Add(f.leeway); e.Before(until) {
			until = e
		}
	}
	id.validUntil = until.UnixNano()
	return id
}

func oracleScopes(claims gojwt.MapClaims) []string {
	if s, ok := claims["scope"].(string); ok {
		return strings.Fields(s)
	}
	switch v := claims["scp"].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// trailingAfterClaims reports a token whose claims are one JSON value
// followed by more bytes: golang-jwt's json.Decoder read the first value
// and ignored the rest; the in-place verifier refuses it as malformed.
func trailingAfterClaims(tok []byte) bool {
	parts := bytes.Split(tok, []byte("."))
	if len(parts) != 3 {
		return false
	}
	payload, err := jwsB64.DecodeString(string(parts[1]))
	if err != nil || validJSON(payload) {
		return false
	}
	var v any
	return json.NewDecoder(bytes.NewReader(payload)).Decode(&v) == nil
}

// sameVerdict fails t when the two verifiers disagree on tok.
func sameVerdict(t *testing.T, f *filter, tok []byte) {
	t.Helper()
	if !wellFormed(tok) {
		return
	}
	got, gotR := f.verify(tok, f.creds)
	want, wantR := f.oracle(tok)
	if trailingAfterClaims(tok) {
		if gotR != reasonMalformed {
			t.Fatalf("claims with trailing bytes: got reason %s, want malformed (%q)", reasonInfo[gotR].label, tok)
		}
		return
	}
	if gotR != wantR {
		t.Fatalf("reason %q, golang-jwt's %q for %q", reasonInfo[gotR].label, reasonInfo[wantR].label, tok)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("identity %+v, golang-jwt's %+v for %q", got, want, tok)
	}
}

// FuzzSameAsGoJWT builds tokens from a fuzzed header and claims (signed
// with alice's HS256 secret, bob's RS256 key or not at all) and requires
// the in-place verifier to agree with golang-jwt on each, under two
// configurations between them using every option the verifier reads.
func FuzzSameAsGoJWT(f *testing.F) {
	plain, strict := oracleFilters(f)
	for _, sd := range oracleSeeds() {
		f.Add(sd.header, sd.claims, sd.mode)
	}
	f.Fuzz(func(t *testing.T, header, claimSet string, mode byte) {
		tok := oracleToken(t, header, claimSet, mode)
		sameVerdict(t, plain, tok)
		sameVerdict(t, strict, tok)
	})
}

// oracleFilters are the two configurations the differential test runs.
func oracleFilters(t testing.TB) (plain, strict *filter) {
	cons := attackConsumers(t)
	fixed := time.Unix(1_800_000_000, 0)
	plain = newFilter(t, `{"claims_to_headers":{"sub":"X-Sub","grp":"X-Grp","n":"X-N","o":"X-O"},"cache_size":0}`, cons...)
	idp := newJWKSServer(t, testJWK{kid: "k1", alg: "RS256", pub: &rsaKey.PublicKey})
	strict = startFilter(t, jwksCfg(idp.URL, `,"audiences":["api","b\u00e9"],"require_exp":false,"consumer_claim":"cn","key_claim_name":"kc","clock_skew":"30s","cache_size":0`), cons...)
	t.Cleanup(func() { strict.Close() })
	for _, flt := range []*filter{plain, strict} {
		flt.now = func() time.Time { return fixed }
	}
	return plain, strict
}

// oracleToken signs header.claims with alice's HS256 secret (mode 0),
// bob's RS256 key (1) or not at all (2).
func oracleToken(t testing.TB, header, claimSet string, mode byte) []byte {
	input := b64(header) + "." + b64(claimSet)
	var sig string
	switch mode % 3 {
	case 0:
		sig = hs256(hs256Secret, input)
	case 1:
		s, err := gojwt.SigningMethodRS256.Sign(input, rsaKey)
		if err != nil {
			t.Fatal(err)
		}
		sig = jwsB64.EncodeToString(s)
	default:
		sig = b64("not a signature")
	}
	return []byte(input + "." + sig)
}

type oracleSeed struct {
	header, claims string
	mode           byte
}

// oracleSeeds cross headers and claim sets chosen to reach every reason.
func oracleSeeds() []oracleSeed {
	var seeds []oracleSeed
	now := `1800000000`
	for _, h := range []string{
		`{"alg":"HS256","typ":"JWT"}`, `{"alg":"RS256"}`, `{"alg":"HS256","alg":"RS256"}`, `{"alg":"none"}`,
		`{"\u0061lg":"HS256"}`, `{"alg":"HS\u0032\u0035\u0036"}`, `null`, `[]`, `{"alg":5}`, `{"alg":"HS256","kid":7}`,
		`{"alg":"HS256","jwk":null}`, `{"alg":"HS256","crit":["exp"]}`, ` {"alg" : "HS256"} `, `{"alg":"HS256"}x`,
		`{"alg":"ES256"}`, `{"alg":"HS256","x":{"y":[1,2,{"z":null}]}}`, `{"alg":"RS256","kid":"k1"}`, `{"alg":"RS256","kid":"k\u0031"}`,
		`{"alg":"RS256","kid":"k2"}`, `{"alg":"RS256","kid":null}`,
	} {
		for _, c := range []string{
			`{"iss":"alice-app","sub":"u","exp":` + now + `0}`,
			`{"iss":"alice-app","kc":"alice-app","sub":"u\u00e9\n","exp":1800000100.9,"aud":"api"}`,
			`{"iss":"alice-app","kc":"bob-app","exp":1799999999,"nbf":1800000031,"iat":"x"}`,
			`{"iss":"alice-app","exp":null}`, `{"iss":"alice-app","exp":1e400,"aud":["x","api"]}`,
			`{"iss":"alice-app","exp":-1.5,"aud":[1]}`, `{"iss":"alice-app","exp":0,"aud":""}`, `{"iss":"alice-app","aud":[""]}`,
			`{"iss":"alice-app","kc":"alice-app","aud":5,"cn":"bob"}`, `{"kc":"nobody","cn":"alice","sub":"s","aud":"b\u00e9"}`,
			`{"iss":"alice-app","iss":"bob-app","exp":1900000000}`, `null`, `[]`, `{"iss":"alice-app"} {}`, `{"iss":"alice-app"}x`,
			`{"iss":"alice-app","exp":1900000000,"scope":"a  b\tc","scp":["x"],"grp":["g1","g2"],"n":12.50,"o":{"b":1,"a":[true,null,"<"]}}`,
			`{"iss":"alice-app","exp":1900000000,"scp":["x","",3,"y"],"grp":[1,"a"],"n":true,"o":null,"sub":7}`,
			`{"iss":"alice-app","exp":1900000000,"scp":"p q","scope":5}`, `{"iss":"alice-app","exp":1900000000,"iat":1900000000}`,
			`{"iss":"https://idp.test","cn":"alice","sub":"s","aud":["b\u00e9"],"exp":1900000000}`,
			`{"iss":"https:\/\/idp.test","cn":"bob","kc":"","aud":"api"}`, `{"iss":"https://idp.test","aud":["nope","API"],"exp":1900000000}`,
			`{"kc":"alice-app","aud":"nope","exp":1900000000}`, `{"iss":"https://idp.test/","cn":"bob","aud":"api"}`,
			`{"i\u0073s":"alice-app","exp":1900000000,"sub":"\ud83d\ude00\udc00"}`, `{"iss":"alice-app","exp":1900000000,"sub":"\xff\xfe"}`,
		} {
			for mode := byte(0); mode < 3; mode++ {
				seeds = append(seeds, oracleSeed{h, c, mode})
			}
		}
	}
	return seeds
}

// TestOracleSeedsReachEveryReason: the differential test's seeds are
// accepted by both verifiers in some cases and refused for every reason a
// token can have, so agreement on them means something.
func TestOracleSeedsReachEveryReason(t *testing.T) {
	plain, strict := oracleFilters(t)
	seen := map[reason]int{}
	accepted := 0
	for _, sd := range oracleSeeds() {
		tok := oracleToken(t, sd.header, sd.claims, sd.mode)
		for _, flt := range []*filter{plain, strict} {
			sameVerdict(t, flt, tok)
			if id, r := flt.verify(tok, flt.creds); id != nil {
				accepted++
			} else {
				seen[r]++
			}
		}
	}
	if accepted == 0 {
		t.Fatal("no seed token is accepted")
	}
	for r := reasonMalformed; r < numReasons; r++ {
		if r != reasonJWKSUnavailable && seen[r] == 0 {
			t.Errorf("no seed is refused as %s", reasonInfo[r].label)
		}
	}
}
