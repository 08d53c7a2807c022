package jwt

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		name, cfg, err string
	}{
		{"empty", ``, ""},
		{"null", `null`, ""},
		{"all keys", `{"header":"X-Jwt","cookie":"c","hide_credentials":true,"algorithms":["RS256","HS256"],
			"key_claim_name":"iss","jwks_url":"https://idp.example/jwks","jwks_refresh":"10m","jwks_min_refresh":"1m",
			"jwks_timeout":"2s","issuer":"https://idp.example/","consumer_claim":"sub","audiences":["a"],"clock_skew":"30s",
			"require_exp":false,"max_token_bytes":4096,"claims_to_headers":{"sub":"X-Sub"},"cache_size":10,"cache_ttl":"30s","realm":"api"}`, ""},
		{"unknown key", `{"jwks_uri":"x"}`, `unknown field "jwks_uri"`},
		{"wrong type", `{"algorithms":"HS256"}`, "algorithms"},
		{"bare number duration", `{"clock_skew":5}`, `clock_skew: a duration must be a string such as "1s"`},
		{"bad duration", `{"clock_skew":"5 minutes"}`, `clock_skew: invalid duration "5 minutes"`},
		{"negative duration", `{"clock_skew":"-1s"}`, `clock_skew: duration "-1s" must not be negative`},
		{"zero jwks_timeout", `{"jwks_url":"https://x/j","jwks_timeout":"0s"}`, `jwks_timeout must be > 0 and at most 1m`},
		{"bad cache_ttl", `{"cache_ttl":"0s"}`, `cache_ttl must be > 0 (set cache_size: 0 to turn the cache off)`},
		{"bad jwks_timeout", `{"jwks_url":"https://x/j","jwks_timeout":"soon"}`, `jwks_timeout: invalid duration "soon"`},
		{"bad header", `{"header":"X Bad"}`, `header "X Bad" is not a valid header name`},
		{"bad cookie", `{"cookie":"a;b"}`, `cookie "a;b" is not a valid cookie name`},
		{"alg none", `{"algorithms":["HS256","none"]}`, `"none" is never allowed`},
		{"alg NONE", `{"algorithms":["NONE"]}`, `"none" is never allowed`},
		{"unknown alg", `{"algorithms":["HS1"]}`, `algorithms: unknown algorithm "HS1"; use HS256, HS384`},
		{"duplicate alg", `{"algorithms":["HS256","HS256"]}`, `"HS256" is listed twice`},
		{"bad jwks_url", `{"jwks_url":"ftp://x/jwks"}`, `jwks_url "ftp://x/jwks" must be an absolute http(s) URL`},
		{"relative jwks_url", `{"jwks_url":"/jwks"}`, `must be an absolute http(s) URL`},
		{"jwks with only HMAC", `{"jwks_url":"https://x/jwks","algorithms":["HS256"]}`, `jwks_url needs at least one asymmetric algorithm`},
		{"issuer without jwks", `{"issuer":"x"}`, `issuer applies to tokens verified with jwks_url`},
		{"consumer_claim without jwks", `{"consumer_claim":"sub"}`, `consumer_claim applies to tokens verified with jwks_url`},
		{"refresh without jwks", `{"jwks_refresh":"1m"}`, `jwks_refresh, jwks_min_refresh and jwks_timeout need jwks_url`},
		{"refresh too small", `{"jwks_url":"https://x/j","jwks_refresh":"10ms"}`, `jwks_refresh must be at least 1s`},
		{"min refresh too small", `{"jwks_url":"https://x/j","jwks_min_refresh":"10ms"}`, `jwks_min_refresh must be at least 1s`},
		{"min refresh above refresh", `{"jwks_url":"https://x/j","jwks_refresh":"5s","jwks_min_refresh":"10s"}`, `jwks_min_refresh must not exceed jwks_refresh`},
		{"short refresh lowers default min", `{"jwks_url":"https://x/j","jwks_refresh":"5s"}`, ""},
		{"timeout too long", `{"jwks_url":"https://x/j","jwks_timeout":"2m"}`, `jwks_timeout must be > 0 and at most 1m`},
		{"empty audience", `{"audiences":[""]}`, `audiences: an audience must not be empty`},
		{"huge skew", `{"clock_skew":"1h"}`, `clock_skew must be at most 5m`},
		{"tiny max token", `{"max_token_bytes":10}`, `max_token_bytes must be between 64 and 65536`},
		{"huge max token", `{"max_token_bytes":1000000}`, `max_token_bytes must be between 64 and 65536`},
		{"claim header reserved", `{"claims_to_headers":{"sub":"X-Consumer-Name"}}`, `header "X-Consumer-Name" is reserved`},
		{"claim header host", `{"claims_to_headers":{"sub":"host"}}`, `header "host" is reserved`},
		{"claim header invalid", `{"claims_to_headers":{"sub":"X:Y"}}`, `"X:Y" is not a valid header name (claim "sub")`},
		{"claim header is token header", `{"claims_to_headers":{"sub":"authorization"}}`, `header "authorization" is where the token comes from`},
		{"empty claim", `{"claims_to_headers":{"":"X-A"}}`, `claims_to_headers: a claim name must not be empty`},
		{"negative cache", `{"cache_size":-1}`, `cache_size must be between 0 (off) and 1048576`},
		{"realm quote", `{"realm":"a\"b"}`, `realm must be printable ASCII without quotes or backslashes`},
		{"every error", `{"header":"X Y","algorithms":["none","XX256"],"clock_skew":"1h","max_token_bytes":10,"claims_to_headers":{"a":"host","b":"X:Y"}}`,
			`header "X Y" is not a valid header name` + "\n" +
				`algorithms: "none" is never allowed (unsigned tokens)` + "\n" +
				`algorithms: unknown algorithm "XX256"; use ` + strings.Join(supportedAlgs[:], ", ") + "\n" +
				"clock_skew must be at most 5m\n" +
				"max_token_bytes must be between 64 and 65536\n" +
				`claims_to_headers: header "host" is reserved and cannot carry a claim: the gateway sends the target's host, or the client's with the route's preserve_host: true` + "\n" +
				`claims_to_headers: "X:Y" is not a valid header name (claim "b")`},
		{"two bad durations", `{"clock_skew":"soon","cache_ttl":"-1s"}`,
			`clock_skew: invalid duration "soon": use a number with a unit such as "1s" or "250ms"` + "\n" +
				`cache_ttl: duration "-1s" must not be negative`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(&sdk.Build{Route: "r"}, json.RawMessage(tc.cfg))
			plugintest.WantErrContaining(t, err, tc.err)
		})
	}
}

func TestCredentialConfig(t *testing.T) {
	keys(t)
	cases := []struct {
		name  string
		creds []string
		cfg   string
		err   string
	}{
		{"hs256 ok", []string{`{"issuer":"a","algorithm":"HS256","secret":"` + hs256Secret + `"}`}, `{}`, ""},
		{"default algorithm HS256", []string{`{"issuer":"a","secret":"` + hs256Secret + `"}`}, `{}`, ""},
		{"default algorithm RS256", []string{`{"issuer":"a","public_key":` + jsonString(rsaPubPEM) + `}`}, `{}`, ""},
		{"unknown key", []string{`{"issuer":"a","secrett":"x"}`}, `{}`, `consumer "alice": jwt credential 0: unknown field "secrett"`},
		{"no issuer", []string{`{"secret":"` + hs256Secret + `"}`}, `{}`, `jwt credential 0: issuer is required`},
		{"no key", []string{`{"issuer":"a"}`}, `{}`, `set exactly one of secret (HS*) or public_key`},
		{"both keys", []string{`{"issuer":"a","secret":"x","public_key":"y"}`}, `{}`, `set exactly one of secret`},
		{"short secret", []string{`{"issuer":"a","secret":"short"}`}, `{}`, `secret must be at least 32 bytes for HS256 (RFC 7518 §3.2)`},
		{"short HS512 secret", []string{`{"issuer":"a","algorithm":"HS512","secret":"` + hs256Secret + `"}`}, `{}`, `secret must be at least 64 bytes for HS512`},
		{"HS with public key", []string{`{"issuer":"a","algorithm":"HS256","public_key":` + jsonString(rsaPubPEM) + `}`}, `{}`, `algorithm HS256 needs secret, not public_key`},
		{"RS with secret", []string{`{"issuer":"a","algorithm":"RS256","secret":"` + hs256Secret + `"}`}, `{}`, `algorithm RS256 needs public_key (PEM), not secret`},
		{"alg none", []string{`{"issuer":"a","algorithm":"none","secret":"` + hs256Secret + `"}`}, `{}`, `algorithm "none" is not supported`},
		{"alg outside allow-list", []string{`{"issuer":"a","algorithm":"HS512","secret":"` + hsSecret + `"}`}, `{"algorithms":["HS256"]}`, `algorithm HS512 is not in the plugin's algorithms list`},
		{"not PEM", []string{`{"issuer":"a","algorithm":"RS256","public_key":"abc"}`}, `{}`, `public_key is not a PEM RSA public key`},
		{"EC key for RS256", []string{`{"issuer":"a","algorithm":"RS256","public_key":` + jsonString(ec256PEM) + `}`}, `{}`, `public_key is not a PEM RSA public key`},
		{"P-384 key for ES256", []string{`{"issuer":"a","algorithm":"ES256","public_key":` + jsonString(ec384PEM) + `}`}, `{}`, `public_key does not fit ES256: an EC key on P-256`},
		{"RSA key for EdDSA", []string{`{"issuer":"a","algorithm":"EdDSA","public_key":` + jsonString(rsaPubPEM) + `}`}, `{}`, `public_key is not a PEM Ed25519 public key`},
		{"1024-bit RSA", []string{`{"issuer":"a","algorithm":"RS256","public_key":` + jsonString(rsa1024PEM) + `}`}, `{}`, `an RSA key of at least 2048 bits`},
		{"duplicate issuer", []string{`{"issuer":"a","secret":"` + hs256Secret + `"}`, `{"issuer":"a","secret":"` + hs256Secret + `"}`}, `{}`, `issuer "a" is already used by consumer "alice"`},
		{"every bad credential", []string{`{"issuer":"a","secrett":"x","algorithm":1}`, `{"secret":"` + hs256Secret + `"}`, `{"issuer":"b","secret":"short"}`}, `{}`,
			`consumer "alice": jwt credential 0: unknown field "secrett"` + "\n" +
				`consumer "alice": jwt credential 0: algorithm: expected string, got number` + "\n" +
				`consumer "alice": jwt credential 1: issuer is required (the value of the token's key claim)` + "\n" +
				`consumer "alice": jwt credential 2: secret must be at least 32 bytes for HS256 (RFC 7518 §3.2)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			alice := consumer("alice", nil, tc.creds...)
			_, err := New(&sdk.Build{Consumers: sdk.NewConsumers([]*sdk.Consumer{alice})}, json.RawMessage(tc.cfg))
			plugintest.WantErrContaining(t, err, tc.err)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := parseConfig([]byte(`{"jwks_url":"https://x/j"}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Header != "Authorization" || cfg.KeyClaimName != "iss" || cfg.JWKSRefresh.D() != 5*time.Minute ||
		cfg.JWKSMinRefresh.D() != 30*time.Second || cfg.JWKSTimeout.D() != 5*time.Second || cfg.ClockSkew.D() != 0 ||
		!*cfg.RequireExp || cfg.MaxTokenBytes != 8192 || *cfg.CacheSize != 4096 || cfg.CacheTTL.D() != time.Minute ||
		cfg.Realm != "weir" || len(cfg.Algorithms) != len(supportedAlgs) {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, err = parseConfig([]byte(`{"jwks_url":"https://x/j","jwks_refresh":"5s"}`))
	if err != nil || cfg.JWKSMinRefresh.D() != 5*time.Second {
		t.Fatalf("jwks_min_refresh should follow a short jwks_refresh: %v %v", cfg, err)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// FuzzConfig: no config, however broken, panics New.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{`{}`, `{"algorithms":["HS256"]}`, `{"jwks_url":"https://x/j","jwks_refresh":"5s"}`,
		`{"claims_to_headers":{"a":"B"}}`, `{"clock_skew":"1s","cache_size":3}`, `[`, `{"max_token_bytes":-1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cfg string) {
		flt, err := New(&sdk.Build{Route: "fuzz"}, json.RawMessage(cfg))
		if err == nil {
			_ = flt.(*filter).Close()
		}
	})
}
