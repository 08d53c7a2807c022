package oauth2introspection

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func TestConfig(t *testing.T) {
	const u = `"introspection_url":"https://idp.test/oauth2/introspect"`
	cases := []struct {
		name, cfg, err string
	}{
		{"minimal", `{` + u + `}`, ""},
		{"all keys", `{` + u + `,"client_id":"gw","client_secret":"s","token_type_hint":"","cache_ttl":"2m","negative_ttl":"10s",
			"timeout":"1s","cache_size":100,"redis_timeout":"50ms","required_scopes":["a","b:c"],"on_error":401,
			"header":"X-Token","query":"access_token","hide_credentials":true,"max_token_bytes":2048,"match_consumer_names":false,"realm":"api"}`, ""},
		{"no url", `{}`, "introspection_url is required"},
		{"null config", `null`, "introspection_url is required"},
		{"unknown key", `{` + u + `,"cache":"redis"}`, `unknown field "cache"`},
		{"bad url", `{"introspection_url":"idp.test/introspect"}`, `introspection_url "idp.test/introspect" must be an absolute http(s) URL`},
		{"url with credentials", `{"introspection_url":"https://a:b@idp.test/i"}`, "introspection_url must not carry credentials; use client_id and client_secret"},
		{"id without secret", `{` + u + `,"client_id":"gw"}`, "client_id and client_secret go together"},
		{"secret without id", `{` + u + `,"client_secret":"s"}`, "client_id and client_secret go together"},
		{"colon in id", `{` + u + `,"client_id":"a:b","client_secret":"s"}`, "client_id must not contain ':'"},
		{"bare number ttl", `{` + u + `,"cache_ttl":60}`, `cache_ttl: a duration must be a string such as "1s"`},
		{"bad ttl", `{` + u + `,"cache_ttl":"1 minute"}`, `cache_ttl: invalid duration "1 minute"`},
		{"negative ttl", `{` + u + `,"negative_ttl":"-1s"}`, `negative_ttl: duration "-1s" must not be negative`},
		{"huge ttl", `{` + u + `,"cache_ttl":"48h"}`, "cache_ttl must be at most 24h"},
		{"negative above ttl", `{` + u + `,"cache_ttl":"10s","negative_ttl":"20s"}`, "negative_ttl must not exceed cache_ttl"},
		{"cache_ttl 0 allowed", `{` + u + `,"cache_ttl":"0s","negative_ttl":"5s"}`, ""},
		{"zero timeout", `{` + u + `,"timeout":"0s"}`, "timeout must be > 0 and at most 1m"},
		{"long timeout", `{` + u + `,"timeout":"5m"}`, "timeout must be > 0 and at most 1m"},
		{"zero redis timeout", `{` + u + `,"redis_timeout":"0s"}`, "redis_timeout must be > 0 and at most 10s"},
		{"negative cache size", `{` + u + `,"cache_size":-1}`, "cache_size must be between 0 (no in-process cache) and 1048576"},
		{"empty scope", `{` + u + `,"required_scopes":[""]}`, `required_scopes: "" is not a scope token (RFC 6749 §3.3)`},
		{"scope with space", `{` + u + `,"required_scopes":["a b"]}`, `required_scopes: "a b" is not a scope token`},
		{"on_error 500", `{` + u + `,"on_error":500}`, "on_error must be 503 or 401, got 500"},
		{"every error", `{"client_id":"a:b","timeout":"2m","on_error":500,"header":"X Token"}`,
			"introspection_url is required\n" +
				"client_id and client_secret go together: set both (HTTP Basic, RFC 6749 §2.3.1) or neither\n" +
				"client_id must not contain ':' or line breaks\n" +
				"timeout must be > 0 and at most 1m\n" +
				"on_error must be 503 or 401, got 500\n" +
				`header "X Token" is not a valid header name`},
		{"on_error string", `{` + u + `,"on_error":"503"}`, "on_error: expected int"},
		{"bad header", `{` + u + `,"header":"X Token"}`, `header "X Token" is not a valid header name`},
		{"bad query", `{` + u + `,"query":"a=b"}`, `query "a=b" is not a valid query parameter name`},
		{"small max token", `{` + u + `,"max_token_bytes":8}`, "max_token_bytes must be between 16 and 65536"},
		{"realm quote", `{` + u + `,"realm":"a\"b"}`, "realm must be printable ASCII without quotes or backslashes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(&sdk.Build{Route: "r"}, json.RawMessage(tc.cfg))
			plugintest.WantErrContaining(t, err, tc.err)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := parseConfig([]byte(`{"introspection_url":"https://idp.test/i"}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CacheTTL.D() != 60*time.Second || cfg.NegativeTTL.D() != 5*time.Second || cfg.Timeout.D() != 2*time.Second ||
		cfg.RedisTimeout.D() != 200*time.Millisecond || *cfg.CacheSize != 10000 || cfg.OnError != 503 ||
		cfg.Header != "Authorization" || cfg.MaxTokenBytes != 4096 || *cfg.TokenTypeHint != "access_token" ||
		!*cfg.MatchConsumerNames || cfg.Realm != "weir" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestCredentialConfig(t *testing.T) {
	cases := []struct {
		name  string
		creds [][]string
		err   string
	}{
		{"sub and client", [][]string{{`{"sub":"s1"}`, `{"client_id":"c1"}`}}, ""},
		{"both in one", [][]string{{`{"sub":"s1","client_id":"c1"}`}}, `consumer "c0": oauth2_introspection credential 0: set exactly one of sub or client_id`},
		{"neither", [][]string{{`{}`}}, "set exactly one of sub or client_id"},
		{"unknown key", [][]string{{`{"subject":"x"}`}}, `unknown field "subject"`},
		{"duplicate sub", [][]string{{`{"sub":"s1"}`}, {`{"sub":"s1"}`}}, `consumer "c1": oauth2_introspection credential 0: "s1" already identifies consumer "c0"`},
		{"same value, different kinds", [][]string{{`{"sub":"x"}`}, {`{"client_id":"x"}`}}, ""},
		{"every bad credential", [][]string{{`{"subject":"x","sub":1}`, `{}`}, {`{"sub":"s1","client_id":"c1"}`}},
			`consumer "c0": oauth2_introspection credential 0: unknown field "subject"` + "\n" +
				`consumer "c0": oauth2_introspection credential 0: sub: expected string, got number` + "\n" +
				`consumer "c0": oauth2_introspection credential 1: set exactly one of sub or client_id` + "\n" +
				`consumer "c1": oauth2_introspection credential 0: set exactly one of sub or client_id`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var list []*sdk.Consumer
			for i, cr := range tc.creds {
				list = append(list, consumer("c"+string(rune('0'+i)), cr...))
			}
			_, err := New(&sdk.Build{Consumers: sdk.NewConsumers(list)}, json.RawMessage(`{"introspection_url":"https://idp.test/i"}`))
			plugintest.WantErrContaining(t, err, tc.err)
		})
	}
}

func TestParseResponse(t *testing.T) {
	cases := []struct {
		body   string
		active bool
		sub    string
		scope  string
		err    string
	}{
		{`{"active":true,"sub":"u","scope":"a b","exp":1700000000,"client_id":"c"}`, true, "u", "a b", ""},
		{`{"active":false,"sub":"u"}`, false, "", "", ""},
		{` {"active":true, "sub":null, "ext":{"x":[1,2]}} `, true, "", "", ""},
		{`{"active":true,"iss":5,"aud":["a"],"username":"x"}`, true, "", "", ""},
		{`{"active":"true"}`, false, "", "", `"active" must be true or false`},
		{`{"Active":true}`, false, "", "", `no "active" member`},
		{`{"active":true,"active":false}`, false, "", "", `member "active" repeated`},
		{`{"active":true,"scope":["a"]}`, false, "", "", `"scope" has the wrong type`},
		{`{"active":true,"exp":"x"}`, false, "", "", `"exp" has the wrong type`},
		{`{"active":true,"exp":1e13}`, false, "", "", "exp/nbf out of range"},
		{`{"active":true}{}`, false, "", "", "trailing data"},
		{`{"active":true`, false, "", "", "unterminated object"},
		{`[{"active":true}]`, false, "", "", "not a JSON object"},
		{``, false, "", "", "not a JSON object"},
	}
	for _, tc := range cases {
		r, err := parseResponse([]byte(tc.body))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || r.active != tc.active || r.sub != tc.sub || r.scope != tc.scope {
			t.Errorf("%s: got %+v %v", tc.body, r, err)
		}
	}
}

func TestNormalize(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ttl, neg := time.Minute, 5*time.Second
	cases := []struct {
		name   string
		in     rawResponse
		active bool
		until  time.Time
	}{
		{"no exp: cache_ttl", rawResponse{active: true}, true, now.Add(ttl)},
		{"exp before ttl", rawResponse{active: true, exp: float64(now.Unix() + 10)}, true, now.Add(10 * time.Second)},
		{"exp after ttl", rawResponse{active: true, exp: float64(now.Unix() + 3600)}, true, now.Add(ttl)},
		{"exp passed", rawResponse{active: true, exp: float64(now.Unix() - 1)}, false, now.Add(neg)},
		{"nbf ahead", rawResponse{active: true, nbf: float64(now.Unix() + 60)}, false, now.Add(neg)},
		{"inactive", rawResponse{}, false, now.Add(neg)},
	}
	for _, tc := range cases {
		in := normalize(&tc.in, now, ttl, neg)
		if in.Active != tc.active || in.Until != tc.until.UnixMilli() {
			t.Errorf("%s: %+v", tc.name, in)
		}
	}
}

func TestB64Token(t *testing.T) {
	for tok, want := range map[string]bool{
		"abc": true, "a-._~+/9": true, "abc==": true, "2YotnFZFEjr1zCsicMWpAA": true,
		"": false, "=": false, "a=b": false, "a b": false, "a,b": false, "a%20": false, "é": false, "a\x00": false,
	} {
		if got := b64token([]byte(tok)); got != want {
			t.Errorf("b64token(%q) = %v", tok, got)
		}
	}
}
