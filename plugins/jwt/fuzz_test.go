package jwt

import (
	"strings"
	"testing"

	"github.com/weirgw/weir/plugins/internal/bearer"
	"github.com/weirgw/weir/sdk"
)

// FuzzToken feeds arbitrary Authorization values through the whole
// request path (shape check, golang-jwt parse, key lookup, claims). It must
// never panic, must answer within the request, and may only accept the
// seed tokens that were genuinely signed.
func FuzzToken(f *testing.F) {
	cons := attackConsumers(f)
	flt := newFilter(f, `{"claims_to_headers":{"sub":"X-Sub"},"cache_size":16}`, cons...)
	valid := map[string]bool{}
	for _, tok := range []string{
		sign(f, "HS256", []byte(hs256Secret), claims("alice-app"), nil),
		sign(f, "RS256", rsaKey, claims("bob-app"), nil),
	} {
		valid[tok] = true
		f.Add("Bearer " + tok)
	}
	good := sign(f, "HS256", []byte(hs256Secret), claims("alice-app"), nil)
	p := strings.Split(good, ".")
	for _, s := range []string{
		"", "Bearer ", "Bearer a.b.c", "Bearer " + strings.Repeat(".", 100),
		"Bearer " + rawToken(map[string]any{"alg": "none"}, claims("alice-app"), ""),
		"Bearer " + handSigned(map[string]any{"alg": "HS256", "jwk": map[string]any{"kty": "oct"}}, claims("alice-app"), hs256Secret),
		"Bearer " + b64(`{"alg":"HS256","kid":{"x":1}}`) + "." + p[1] + "." + p[2],
		"Bearer " + b64(`{"alg":"HS256"}`) + "." + b64(`{"iss":"alice-app","exp":1e400}`) + "." + p[2],
		"Bearer " + b64(`{"alg":"HS256"}`) + "." + b64(`{"iss":["alice-app"],"aud":{"a":1}}`) + "." + p[2],
		"bearer\t" + good + "x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		rc, c := newCtx(map[string]string{"Authorization": auth})
		defer sdk.ReleaseCtx(c)
		st, err := flt.OnRequest(c)
		if err != nil {
			t.Fatalf("error: %v", err)
		}
		if st == sdk.Continue {
			tok := bearer.Token([]byte(auth), true)
			if !valid[string(tok)] {
				t.Fatalf("accepted a token that was never signed: %q", auth)
			}
			return
		}
		if code := rc.Response.StatusCode(); code != 401 {
			t.Fatalf("refused with %d", code)
		}
	})
}
