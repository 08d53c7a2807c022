package jwt

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

const hs256Secret = "alice-secret-that-is-32-bytes-ok" // exactly 32 bytes

// attackConsumers: alice holds an HS256 secret, bob an RS256 public key.
func attackConsumers(t testing.TB) []*sdk.Consumer {
	keys(t)
	return []*sdk.Consumer{
		consumer("alice", []string{"gold"}, credJSON(map[string]string{"issuer": "alice-app", "algorithm": "HS256", "secret": hs256Secret})),
		consumer("bob", nil, credJSON(map[string]string{"issuer": "bob-app", "algorithm": "RS256", "public_key": rsaPubPEM})),
	}
}

// hs256 signs header.payload by hand, so the test controls every byte.
func hs256(secret, signingInput string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signingInput))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func handSigned(header, payload any, secret string) string {
	in := b64(header) + "." + b64(payload)
	return in + "." + hs256(secret, in)
}

func failureCount(reason string) uint64 {
	return metrics.GetOrCreateCounter(`weir_auth_failures_total{plugin="jwt",route="test-route",reason="` + reason + `"}`).Get()
}

// TestAttacks feeds forged and invalid tokens; every one must be refused
// with 401, a Bearer challenge, no consumer, and the expected reason.
func TestAttacks(t *testing.T) {
	cons := attackConsumers(t)
	open := newFilter(t, `{}`, cons...)
	withAud := newFilter(t, `{"audiences":["api://orders"]}`, cons...)
	onlyHS256 := newFilter(t, `{"algorithms":["HS256"]}`, cons[0])
	aliceHdr := map[string]any{"alg": "HS256", "typ": "JWT"}
	good := claims("alice-app")
	goodTok := sign(t, "HS256", []byte(hs256Secret), good, nil)
	parts := strings.Split(goodTok, ".")

	exp := claims("alice-app")
	exp["exp"] = time.Now().Add(-time.Hour).Unix()
	nbf := claims("alice-app")
	nbf["nbf"] = time.Now().Add(time.Hour).Unix()
	iat := claims("alice-app")
	iat["iat"] = time.Now().Add(time.Hour).Unix()
	noExp := claims("alice-app")
	delete(noExp, "exp")
	strExp := claims("alice-app")
	strExp["exp"] = "tomorrow"
	aud := claims("alice-app")
	aud["aud"] = "api://billing"
	tampered := claims("alice-app")
	tampered["sub"] = "admin"

	attackerPub := map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(rsaKey2.N.Bytes()), "e": "AQAB"}
	hugeDots := strings.Repeat(".", 3000)
	oneMB := strings.Repeat("A", 1<<20) + "." + parts[1] + "." + parts[2]

	cases := []struct {
		name   string
		f      *filter
		hdr    map[string]string
		reason string
	}{
		{"alg none", open, bearerHdr(rawToken(map[string]any{"alg": "none"}, good, "")), "malformed"},
		{"alg none with signature", open, bearerHdr(handSigned(map[string]any{"alg": "none"}, good, hs256Secret)), "bad_alg"},
		{"alg None", open, bearerHdr(handSigned(map[string]any{"alg": "None"}, good, hs256Secret)), "bad_alg"},
		{"alg NONE", open, bearerHdr(handSigned(map[string]any{"alg": "NONE"}, good, hs256Secret)), "bad_alg"},
		{"alg nOnE", open, bearerHdr(handSigned(map[string]any{"alg": "nOnE"}, good, hs256Secret)), "bad_alg"},
		{"alg missing", open, bearerHdr(handSigned(map[string]any{"typ": "JWT"}, good, hs256Secret)), "bad_alg"},
		{"alg not a string", open, bearerHdr(handSigned(map[string]any{"alg": 256}, good, hs256Secret)), "bad_alg"},
		{"key confusion: HS256 signed with bob's RSA public key PEM", open,
			bearerHdr(handSigned(aliceHdr, claims("bob-app"), rsaPubPEM)), "bad_alg"},
		{"jwk in header", open, bearerHdr(sign(t, "RS256", rsaKey2, claims("bob-app"), map[string]any{"jwk": attackerPub})), "forbidden_header"},
		{"jku in header", open, bearerHdr(sign(t, "RS256", rsaKey2, claims("bob-app"), map[string]any{"jku": "https://evil.example/jwks"})), "forbidden_header"},
		{"x5u in header", open, bearerHdr(sign(t, "RS256", rsaKey2, claims("bob-app"), map[string]any{"x5u": "https://evil.example/cert"})), "forbidden_header"},
		{"x5c in header", open, bearerHdr(sign(t, "RS256", rsaKey2, claims("bob-app"), map[string]any{"x5c": []string{"MIIB"}})), "forbidden_header"},
		{"jwk in header even with the right key", open, bearerHdr(sign(t, "HS256", []byte(hs256Secret), good, map[string]any{"jwk": attackerPub})), "forbidden_header"},
		{"crit in header", open, bearerHdr(sign(t, "HS256", []byte(hs256Secret), good, map[string]any{"crit": []string{"b64"}, "b64": false})), "forbidden_header"},
		{"expired", open, bearerHdr(sign(t, "HS256", []byte(hs256Secret), exp, nil)), "expired"},
		{"nbf in the future", open, bearerHdr(sign(t, "HS256", []byte(hs256Secret), nbf, nil)), "not_yet_valid"},
		{"iat in the future", open, bearerHdr(sign(t, "HS256", []byte(hs256Secret), iat, nil)), "not_yet_valid"},
		{"missing exp", open, bearerHdr(sign(t, "HS256", []byte(hs256Secret), noExp, nil)), "missing_claim"},
		{"exp not a number", open, bearerHdr(sign(t, "HS256", []byte(hs256Secret), strExp, nil)), "invalid_claims"},
		{"wrong iss (unknown issuer)", open, bearerHdr(sign(t, "HS256", []byte(hs256Secret), claims("mallory-app"), nil)), "unknown_key"},
		{"no iss", open, bearerHdr(sign(t, "HS256", []byte(hs256Secret), gojwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}, nil)), "unknown_key"},
		{"wrong aud", withAud, bearerHdr(sign(t, "HS256", []byte(hs256Secret), aud, nil)), "bad_audience"},
		{"missing aud", withAud, bearerHdr(goodTok), "missing_claim"},
		{"tampered payload", open, bearerHdr(parts[0] + "." + b64(tampered) + "." + parts[2]), "bad_signature"},
		{"wrong HMAC key", open, bearerHdr(sign(t, "HS256", []byte("another-secret-of-32-bytes-long!"), good, nil)), "bad_signature"},
		{"wrong RSA key", open, bearerHdr(sign(t, "RS256", rsaKey2, claims("bob-app"), nil)), "bad_signature"},
		{"ES256 for an RS256 credential", open, bearerHdr(sign(t, "ES256", ecKey256, claims("bob-app"), nil)), "bad_alg"},
		{"RS384 for an RS256 credential", open, bearerHdr(sign(t, "RS384", rsaKey, claims("bob-app"), nil)), "bad_alg"},
		{"HS384 when only HS256 is allowed", onlyHS256, bearerHdr(sign(t, "HS384", []byte(hs256Secret+hs256Secret), good, nil)), "bad_alg"},
		{"truncated signature", open, bearerHdr(parts[0] + "." + parts[1] + "." + truncateSig(parts[2])), "bad_signature"},
		{"truncated signature, invalid base64 length", open, bearerHdr(goodTok[:len(goodTok)-6]), "malformed"},
		{"empty signature", open, bearerHdr(parts[0] + "." + parts[1] + "."), "malformed"},
		{"signature of another token", open, bearerHdr(parts[0] + "." + parts[1] + "." + strings.Split(sign(t, "HS256", []byte(hs256Secret), claims("alice-app2"), nil), ".")[2]), "bad_signature"},
		{"non-JSON header", open, bearerHdr(b64("not json") + "." + parts[1] + "." + parts[2]), "malformed"},
		{"header is a JSON array", open, bearerHdr(b64("[1,2]") + "." + parts[1] + "." + parts[2]), "malformed"},
		{"non-JSON payload", open, bearerHdr(parts[0] + "." + b64("{{{") + "." + parts[2]), "malformed"},
		{"non-base64 characters", open, bearerHdr(parts[0] + "." + parts[1] + "!." + parts[2]), "malformed"},
		{"base64 padding", open, bearerHdr(parts[0] + "=." + parts[1] + "." + parts[2]), "malformed"},
		{"standard base64 alphabet", open, bearerHdr(parts[0] + "+/." + parts[1] + "." + parts[2]), "malformed"},
		{"non-canonical base64 (trailing bits)", open, bearerHdr(parts[0] + "." + parts[1] + "." + flipLastBits(parts[2])), "malformed"},
		{"3000 dots", open, bearerHdr(hugeDots), "malformed"},
		{"3000 dots after a token", open, bearerHdr(goodTok + hugeDots), "malformed"},
		{"four segments", open, bearerHdr(goodTok + ".AAAA"), "malformed"},
		{"two segments", open, bearerHdr(parts[0] + "." + parts[1]), "malformed"},
		{"1 MB token", open, bearerHdr(oneMB), "too_large"},
		{"bad Bearer prefix: Basic", open, map[string]string{"Authorization": "Basic " + goodTok}, "missing"},
		{"bad Bearer prefix: no space", open, map[string]string{"Authorization": "Bearer" + goodTok}, "missing"},
		{"bad Bearer prefix: Token", open, map[string]string{"Authorization": "Token " + goodTok}, "missing"},
		{"bare token in Authorization", open, map[string]string{"Authorization": goodTok}, "missing"},
		{"Bearer with nothing", open, map[string]string{"Authorization": "Bearer   "}, "missing"},
		{"two tokens", open, map[string]string{"Authorization": "Bearer " + goodTok + " " + goodTok}, "malformed"},
		{"no Authorization", open, nil, "missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := failureCount(tc.reason)
			start := time.Now()
			r := run(t, tc.f, tc.hdr)
			wantRefused(t, r, 401, `"status":401`)
			if d := time.Since(start); d > time.Second {
				t.Fatalf("refusal took %s", d)
			}
			if got := failureCount(tc.reason) - before; got != 1 {
				t.Fatalf("reason %q counted %d times; the refusal was classified otherwise (body %s)", tc.reason, got, r.Body)
			}
			if tc.reason == "missing" {
				if r.Challenge != `Bearer realm="weir"` {
					t.Fatalf("a request without a token gets no error code (RFC 6750 §3.1), got %q", r.Challenge)
				}
			} else if !strings.Contains(r.Challenge, `error="invalid_token"`) {
				t.Fatalf("challenge lacks error=\"invalid_token\": %q", r.Challenge)
			}
		})
	}
	if len(cases) < 20 {
		t.Fatalf("only %d attack cases", len(cases))
	}
	// The good token itself passes, so the refusals above are not an
	// artefact of a broken setup.
	plugintest.WantAccepted(t, run(t, open, bearerHdr(goodTok)))
}

// truncateSig drops the last bytes of a signature, re-encoded canonically.
func truncateSig(seg string) string {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw[:len(raw)-3])
}

// flipLastBits changes the unused low bits of the last base64url character
// so the segment decodes to the same bytes; strict decoding refuses it.
func flipLastBits(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last^1])
}

// TestOversizedTokensBounded: oversized and dotted tokens are refused
// before any parsing: the plugin allocates nothing beyond what writing the
// gateway's JSON error costs (measured as a baseline).
func TestOversizedTokensBounded(t *testing.T) {
	f := newFilter(t, `{}`, attackConsumers(t)...)
	rc0, c0 := newCtx(nil)
	sdk.ReleaseCtx(c0)
	challenge := []byte(`Bearer realm="weir", error="invalid_token"`)
	baseline := testing.AllocsPerRun(50, func() {
		c := sdk.AcquireCtx(rc0)
		c.Fail(401, "malformed token")
		c.SetResponseHeader("WWW-Authenticate", challenge)
		c.Response().Header.SetBytesV("WWW-Authenticate", challenge)
		sdk.ReleaseCtx(c)
	})
	for name, tok := range map[string]string{
		"1 MB":       strings.Repeat("A", 1<<20),
		"3000 dots":  strings.Repeat(".", 3000),
		"8000 dots":  "a" + strings.Repeat(".a", 4000)[:8000],
		"max+1 size": strings.Repeat("A", defaultMaxTokenBytes+1),
	} {
		t.Run(name, func(t *testing.T) {
			rc, c := newCtx(bearerHdr(tok))
			sdk.ReleaseCtx(c)
			allocs := testing.AllocsPerRun(50, func() {
				c := sdk.AcquireCtx(rc)
				st, _ := f.OnRequest(c)
				sdk.ReleaseCtx(c)
				if st != sdk.Stop {
					t.Fatal("accepted")
				}
			})
			if allocs > baseline && !raceEnabled {
				t.Fatalf("refusing a %s token allocated %.1f times per request; writing the error alone costs %.1f", name, allocs, baseline)
			}
			if rc.Response.StatusCode() != 401 {
				t.Fatalf("status %d", rc.Response.StatusCode())
			}
		})
	}
}
