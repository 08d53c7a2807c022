package jwt

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// TestAlgorithms: a token signed with each supported algorithm and the
// consumer's key is accepted and identifies the consumer.
func TestAlgorithms(t *testing.T) {
	keys(t)
	cases := []struct {
		alg      string
		signWith any
		cred     map[string]string
	}{
		{"HS256", []byte(hs256Secret), map[string]string{"secret": hs256Secret}},
		{"HS384", []byte(hsSecret[:48]), map[string]string{"secret": hsSecret[:48]}},
		{"HS512", []byte(hsSecret), map[string]string{"secret": hsSecret}},
		{"RS256", rsaKey, map[string]string{"public_key": rsaPubPEM}},
		{"RS384", rsaKey, map[string]string{"public_key": rsaPubPEM}},
		{"RS512", rsaKey, map[string]string{"public_key": rsaPubPEM}},
		{"PS256", rsaKey, map[string]string{"public_key": rsaPubPEM}},
		{"ES256", ecKey256, map[string]string{"public_key": ec256PEM}},
		{"ES384", ecKey384, map[string]string{"public_key": ec384PEM}},
		{"EdDSA", edKey, map[string]string{"public_key": edPubPEM}},
	}
	if len(cases) != len(supportedAlgs) {
		t.Fatalf("%d cases for %d algorithms", len(cases), len(supportedAlgs))
	}
	for _, tc := range cases {
		t.Run(tc.alg, func(t *testing.T) {
			tc.cred["issuer"] = "app-" + tc.alg
			tc.cred["algorithm"] = tc.alg
			alice := consumer("alice", []string{"gold"}, credJSON(tc.cred))
			f := newFilter(t, `{"cache_size":0}`, alice)
			r := run(t, f, bearerHdr(sign(t, tc.alg, tc.signWith, claims("app-"+tc.alg), nil)))
			plugintest.WantAccepted(t, r)
			if r.Consumer != alice || r.Credential != "app-"+tc.alg {
				t.Fatalf("consumer %v credential %q", r.Consumer, r.Credential)
			}
		})
	}
}

func TestClaimsScopesAndHeaders(t *testing.T) {
	alice := attackConsumers(t)[0]
	f := newFilter(t, `{"claims_to_headers":{"sub":"X-User","tenant":"X-Tenant","roles":"X-Roles","n":"X-N","obj":"X-Obj","nl":"X-Nl"}}`, alice)
	c := claims("alice-app")
	c["scope"] = "read:orders  write:orders"
	c["roles"] = []string{"admin", "ops"}
	c["n"] = 12345678901234567
	c["obj"] = map[string]any{"a": 1}
	c["nl"] = "evil\r\nX-Injected: 1"
	r := run(t, f, map[string]string{
		"Authorization": "bearer " + sign(t, "HS256", []byte(hs256Secret), c, nil),
		"X-Tenant":      "forged-by-client", // the token has no tenant: must vanish
		"X-User":        "forged-by-client",
	})
	plugintest.WantAccepted(t, r)
	if r.Consumer == nil || r.Consumer.Name != "alice" {
		t.Fatalf("consumer %v", r.Consumer)
	}
	if strings.Join(r.Scopes, ",") != "read:orders,write:orders" {
		t.Fatalf("scopes %q", r.Scopes)
	}
	want := map[string]string{"X-User": "user-1", "X-Roles": "admin,ops", "X-N": "12345678901234567", "X-Obj": `{"a":1}`, "X-Nl": "evilX-Injected: 1"}
	for k, v := range want {
		if r.RequestHeaders[k] != v {
			t.Errorf("%s = %q, want %q", k, r.RequestHeaders[k], v)
		}
	}
	if v, ok := r.RequestHeaders["X-Tenant"]; ok {
		t.Errorf("client-sent X-Tenant survived: %q", v)
	}
	if _, ok := r.RequestHeaders["X-Injected"]; ok {
		t.Error("a claim injected a header")
	}
}

func TestScpClaim(t *testing.T) {
	f := newFilter(t, `{}`, attackConsumers(t)[0])
	for name, v := range map[string]any{"list": []string{"a", "b"}, "string": "a b"} {
		c := claims("alice-app")
		c["scp"] = v
		r := run(t, f, bearerHdr(sign(t, "HS256", []byte(hs256Secret), c, nil)))
		plugintest.WantAccepted(t, r)
		if strings.Join(r.Scopes, ",") != "a,b" {
			t.Fatalf("%s: scopes %q", name, r.Scopes)
		}
	}
}

func TestTokenSources(t *testing.T) {
	alice := attackConsumers(t)[0]
	tok := sign(t, "HS256", []byte(hs256Secret), claims("alice-app"), nil)
	t.Run("custom header, bare token", func(t *testing.T) {
		f := newFilter(t, `{"header":"X-Token","hide_credentials":true}`, alice)
		r := run(t, f, map[string]string{"X-Token": tok})
		plugintest.WantAccepted(t, r)
		if _, ok := r.RequestHeaders["X-Token"]; ok {
			t.Fatal("hide_credentials kept the header")
		}
		plugintest.WantAccepted(t, run(t, f, map[string]string{"X-Token": "Bearer " + tok}))
		wantRefused(t, run(t, f, bearerHdr(tok)), 401, "missing bearer token")
	})
	t.Run("cookie", func(t *testing.T) {
		f := newFilter(t, `{"cookie":"session","hide_credentials":true}`, alice)
		r := run(t, f, map[string]string{"Cookie": "a=1; session=" + tok + "; b=2"})
		plugintest.WantAccepted(t, r)
		if strings.Contains(r.RequestHeaders["Cookie"], "session") {
			t.Fatalf("hide_credentials kept the cookie: %q", r.RequestHeaders["Cookie"])
		}
		// Authorization is read first (header defaults to it only when no
		// cookie is configured: here only the cookie counts).
		wantRefused(t, run(t, f, bearerHdr(tok)), 401, "missing")
	})
	t.Run("header then cookie", func(t *testing.T) {
		f := newFilter(t, `{"header":"Authorization","cookie":"session"}`, alice)
		plugintest.WantAccepted(t, run(t, f, bearerHdr(tok)))
		plugintest.WantAccepted(t, run(t, f, map[string]string{"Cookie": "session=" + tok}))
		plugintest.WantAccepted(t, run(t, f, map[string]string{"Authorization": "Basic dXNlcjpwYXNz", "Cookie": "session=" + tok}))
	})
	t.Run("Authorization kept by default", func(t *testing.T) {
		f := newFilter(t, `{}`, alice)
		r := run(t, f, bearerHdr(tok))
		if r.RequestHeaders["Authorization"] != "Bearer "+tok {
			t.Fatal("Authorization removed without hide_credentials")
		}
	})
}

func TestClockSkewAndOptionalExp(t *testing.T) {
	alice := attackConsumers(t)[0]
	c := claims("alice-app")
	c["exp"] = time.Now().Add(-10 * time.Second).Unix()
	expired := sign(t, "HS256", []byte(hs256Secret), c, nil)
	wantRefused(t, run(t, newFilter(t, `{}`, alice), bearerHdr(expired)), 401, "token expired")
	plugintest.WantAccepted(t, run(t, newFilter(t, `{"clock_skew":"30s"}`, alice), bearerHdr(expired)))

	noExp := claims("alice-app")
	delete(noExp, "exp")
	tok := sign(t, "HS256", []byte(hs256Secret), noExp, nil)
	wantRefused(t, run(t, newFilter(t, `{}`, alice), bearerHdr(tok)), 401, "lacks a required claim")
	plugintest.WantAccepted(t, run(t, newFilter(t, `{"require_exp":false}`, alice), bearerHdr(tok)))
}

func TestAudiences(t *testing.T) {
	alice := attackConsumers(t)[0]
	f := newFilter(t, `{"audiences":["api://a","api://b"]}`, alice)
	for _, aud := range []any{"api://b", []string{"x", "api://a"}} {
		c := claims("alice-app")
		c["aud"] = aud
		plugintest.WantAccepted(t, run(t, f, bearerHdr(sign(t, "HS256", []byte(hs256Secret), c, nil))))
	}
}

func TestKeyClaimName(t *testing.T) {
	alice := consumer("alice", nil, credJSON(map[string]string{"issuer": "key-42", "secret": hs256Secret}))
	f := newFilter(t, `{"key_claim_name":"kid_claim"}`, alice)
	c := claims("whoever")
	c["kid_claim"] = "key-42"
	r := run(t, f, bearerHdr(sign(t, "HS256", []byte(hs256Secret), c, nil)))
	plugintest.WantAccepted(t, r)
	if r.Consumer != alice {
		t.Fatal("consumer not matched by key_claim_name")
	}
	wantRefused(t, run(t, f, bearerHdr(sign(t, "HS256", []byte(hs256Secret), claims("key-42"), nil))), 401, "no key")
}

// TestCache: a repeated token is served from the cache, but never past its
// exp (plus clock_skew) nor past cache_ttl.
func TestCache(t *testing.T) {
	alice := attackConsumers(t)[0]
	f := newFilter(t, `{"cache_ttl":"10s","claims_to_headers":{"sub":"X-User"}}`, alice)
	now := time.Now()
	f.now = func() time.Time { return now }
	c := claims("alice-app")
	c["exp"] = now.Add(5 * time.Second).Unix()
	c["scope"] = "s1"
	tok := sign(t, "HS256", []byte(hs256Secret), c, nil)

	hits := f.cacheHit.Get()
	for i := 0; i < 3; i++ {
		r := run(t, f, bearerHdr(tok))
		plugintest.WantAccepted(t, r)
		if r.Consumer != alice || r.RequestHeaders["X-User"] != "user-1" || len(r.Scopes) != 1 {
			t.Fatalf("cached identity lost data: %+v", r)
		}
	}
	if got := f.cacheHit.Get() - hits; got != 2 {
		t.Fatalf("cache hits %d, want 2", got)
	}
	if f.cache.len() != 1 {
		t.Fatalf("cache holds %d entries", f.cache.len())
	}
	now = now.Add(6 * time.Second) // past exp: the cache must not answer
	wantRefused(t, run(t, f, bearerHdr(tok)), 401, "token expired")

	// cache_ttl bounds entries of long-lived tokens.
	now = time.Now()
	long := claims("alice-app")
	long["exp"] = now.Add(time.Hour).Unix()
	tok2 := sign(t, "HS256", []byte(hs256Secret), long, nil)
	run(t, f, bearerHdr(tok2))
	id := f.cache.get([]byte(tok2), now.UnixNano())
	if id == nil || time.Duration(id.validUntil-now.UnixNano()) > 10*time.Second {
		t.Fatalf("entry not bounded by cache_ttl: %+v", id)
	}
	if f.cache.get([]byte(tok2), now.Add(11*time.Second).UnixNano()) != nil {
		t.Fatal("entry served after cache_ttl")
	}
}

func TestCacheBounded(t *testing.T) {
	tc := newTokenCache(32)
	now := time.Now().UnixNano()
	for i := 0; i < 1000; i++ {
		tc.put([]byte(fmt.Sprintf("tok-%d", i)), &identity{validUntil: now + int64(time.Hour)}, now)
	}
	if n := tc.len(); n > 32 {
		t.Fatalf("cache grew to %d entries, bound 32", n)
	}
}

func TestConsumerWithoutCredentials(t *testing.T) {
	// A plugin with neither credentials nor jwks_url refuses every token.
	f := newFilter(t, `{}`)
	wantRefused(t, run(t, f, bearerHdr(sign(t, "HS256", []byte(hs256Secret), claims("alice-app"), nil))), 401, "no key")
}

func TestRegistered(t *testing.T) {
	fac, ok := sdk.Lookup("jwt")
	if !ok {
		t.Fatal("jwt is not registered")
	}
	if _, err := fac.New(&sdk.Build{}, json.RawMessage(`null`)); err != nil {
		t.Fatalf("New(null): %v", err)
	}
}

func TestHeaderValue(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{"plain", "plain"},
		{json.Number("1.5e3"), "1.5e3"},
		{true, "true"},
		{[]any{"a", "b"}, "a,b"},
		{[]any{"a", 1.0}, `["a",1]`},
		{map[string]any{"k": "v"}, `{"k":"v"}`},
		{nil, "null"},
		{"a\x00b\x7fc\td", "abcd"},
	}
	for _, tc := range cases {
		if got := headerValue(tc.in); got != tc.want {
			t.Errorf("headerValue(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWellFormed(t *testing.T) {
	cases := map[string]bool{
		"a.b.c": true, "aB-_9.x.y": true,
		"": false, "a.b": false, "a.b.c.d": false, ".b.c": false, "a..c": false, "a.b.": false,
		"a.b.c=": false, "a b.c.d": false, "a.b.c\n": false, "a+.b.c": false, "...": false,
	}
	for in, want := range cases {
		if got := wellFormed([]byte(in)); got != want {
			t.Errorf("wellFormed(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestNoneNeverVerifies: even a parser that somehow allowed "none" could
// not accept an unsigned token, because no key is the unsafe marker.
func TestNoneNeverVerifies(t *testing.T) {
	if gojwt.SigningMethodNone.Verify("a.b", nil, []byte(hs256Secret)) == nil {
		t.Fatal("none verified with a real key")
	}
}
