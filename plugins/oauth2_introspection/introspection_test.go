package oauth2introspection

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func TestActiveToken(t *testing.T) {
	p := newIDP(t)
	p.set("tok-alice", active("alice", "read write", time.Now().Add(time.Hour)))
	alice := consumer("alice")
	f := newFilter(t, &sdk.Build{Consumers: consumersOf(alice)}, cfgFor(p, ""))
	for i := 0; i < 3; i++ {
		r := run(t, f, "tok-alice")
		plugintest.WantAccepted(t, r)
		if r.Consumer != alice || r.Credential != "alice" || strings.Join(r.Scopes, " ") != "read write" {
			t.Fatalf("identity: %v %q %q", r.Consumer, r.Credential, r.Scopes)
		}
	}
	if n := p.callsFor("tok-alice"); n != 1 {
		t.Fatalf("%d introspection calls for a cached token, want 1", n)
	}
	if p.badAuth.Load() != 0 {
		t.Fatal("the server refused the client credentials")
	}
}

func TestInactiveTokenNegativeCache(t *testing.T) {
	p := newIDP(t)
	f := newFilter(t, nil, cfgFor(p, `,"negative_ttl":"5s"`))
	now := time.Now()
	f.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		r := run(t, f, "tok-revoked")
		plugintest.WantRefused(t, r, 401, "token is not active")
		if !strings.Contains(r.Challenge, `error="invalid_token"`) {
			t.Fatalf("challenge %q", r.Challenge)
		}
	}
	if n := p.callsFor("tok-revoked"); n != 1 {
		t.Fatalf("inactive answer not cached: %d calls", n)
	}
	now = now.Add(6 * time.Second)
	plugintest.WantRefused(t, run(t, f, "tok-revoked"), 401, "not active")
	if n := p.callsFor("tok-revoked"); n != 2 {
		t.Fatalf("negative_ttl not honoured: %d calls", n)
	}
}

// TestExpiredWhileCached: the cache never outlives the token's exp, nor
// cache_ttl.
func TestExpiredWhileCached(t *testing.T) {
	p := newIDP(t)
	now := time.Now()
	p.set("tok-short", active("u", "", now.Add(3*time.Second)))
	p.set("tok-long", active("u", "", now.Add(time.Hour)))
	f := newFilter(t, nil, cfgFor(p, `,"cache_ttl":"60s"`))
	f.now = func() time.Time { return now }
	plugintest.WantAccepted(t, run(t, f, "tok-short"))
	plugintest.WantAccepted(t, run(t, f, "tok-long"))

	now = now.Add(4 * time.Second) // tok-short's exp passed: ask again
	p.set("tok-short", map[string]any{"active": false})
	plugintest.WantRefused(t, run(t, f, "tok-short"), 401, "not active")
	plugintest.WantAccepted(t, run(t, f, "tok-long"))
	if a, b := p.callsFor("tok-short"), p.callsFor("tok-long"); a != 2 || b != 1 {
		t.Fatalf("calls short=%d long=%d, want 2 and 1", a, b)
	}
	now = now.Add(60 * time.Second) // cache_ttl passed for tok-long
	plugintest.WantAccepted(t, run(t, f, "tok-long"))
	if n := p.callsFor("tok-long"); n != 2 {
		t.Fatalf("cache_ttl not honoured: %d calls", n)
	}
}

// TestServerSaysActiveButExpired: an active answer whose exp is past (or
// nbf ahead) is not trusted.
func TestServerSaysActiveButExpired(t *testing.T) {
	p := newIDP(t)
	p.set("tok-stale", active("u", "", time.Now().Add(-time.Minute)))
	nbf := active("u", "", time.Now().Add(time.Hour))
	nbf["nbf"] = time.Now().Add(time.Minute).Unix()
	p.set("tok-early", nbf)
	f := newFilter(t, nil, cfgFor(p, ""))
	plugintest.WantRefused(t, run(t, f, "tok-stale"), 401, "not active")
	plugintest.WantRefused(t, run(t, f, "tok-early"), 401, "not active")
}

func TestFailingServer(t *testing.T) {
	p := newIDP(t)
	p.set("tok", "!500")
	t.Run("default 503", func(t *testing.T) {
		f := newFilter(t, nil, cfgFor(p, ""))
		before := p.callsFor("tok")
		r := run(t, f, "tok")
		plugintest.WantRefused(t, r, 503, "token introspection unavailable")
		if r.Challenge != "" {
			t.Fatalf("503 with a challenge: %q", r.Challenge)
		}
		plugintest.WantRefused(t, run(t, f, "tok"), 503, "unavailable")
		if n := p.callsFor("tok") - before; n != 2 {
			t.Fatalf("errors must not be cached: %d calls for 2 requests", n)
		}
		if f.reqError.Get() < 2 {
			t.Fatal("error metric not counted")
		}
	})
	t.Run("on_error 401", func(t *testing.T) {
		f := newFilter(t, nil, cfgFor(p, `,"on_error":401`))
		r := run(t, f, "tok")
		plugintest.WantRefused(t, r, 401, "token introspection unavailable")
		if !strings.Contains(r.Challenge, `error="invalid_token"`) {
			t.Fatalf("challenge %q", r.Challenge)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		f := newFilter(t, nil, `{"introspection_url":"http://127.0.0.1:1/introspect"}`)
		plugintest.WantRefused(t, run(t, f, "tok"), 503, "unavailable")
	})
	t.Run("wrong client credentials", func(t *testing.T) {
		f := newFilter(t, nil, `{"introspection_url":"`+p.URL+`","client_id":"x","client_secret":"y"}`)
		plugintest.WantRefused(t, run(t, f, "tok"), 503, "unavailable")
	})
}

// TestGarbageNeverActive: whatever a broken server answers with status
// 200, a token only becomes active on a well-formed `"active": true`.
func TestGarbageNeverActive(t *testing.T) {
	p := newIDP(t)
	f := newFilter(t, nil, cfgFor(p, ""))
	for i, body := range []string{
		``, `not json`, `{}`, `[true]`, `true`, `null`,
		`{"active":"true"}`, `{"active":1}`, `{"active":null}`, `{"Active":true}`,
		`{"active":true,"scope":["a"]}`, `{"active":true,"exp":"soon"}`, `{"active":true,"sub":5}`,
		`{"active":true} {"active":true}`, `{"active":true`, `<html>active</html>`,
		`{"active":true,"exp":-1}`, `{"active":false,"active":true}`, `{"active":true,"active":true}`,
		`{"active":true,"sub":"a","sub":"b"}`, `{"active":true,"exp":1e300}`,
		`{"active":true,"scope":"` + strings.Repeat("a", maxResponseBytes) + `"}`,
	} {
		tok := "garbage-" + string(rune('a'+i))
		p.set(tok, body)
		r := run(t, f, tok)
		if r.Status == sdk.Continue || r.Code != 503 {
			t.Fatalf("body %.60q: got %d %s, want 503", body, r.Code, r.Body)
		}
	}
}

func TestSlowServer(t *testing.T) {
	p := newIDP(t)
	p.set("tok", active("u", "", time.Now().Add(time.Hour)))
	p.mu.Lock()
	p.delay = 2 * time.Second
	p.mu.Unlock()
	f := newFilter(t, nil, cfgFor(p, `,"timeout":"200ms"`))
	start := time.Now()
	plugintest.WantRefused(t, run(t, f, "tok"), 503, "unavailable")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("timeout 200ms but the request waited %s", d)
	}
}

// TestSingleFlight: 50 concurrent requests with one uncached token cause
// one introspection call.
func TestSingleFlight(t *testing.T) {
	p := newIDP(t)
	p.set("tok-hot", active("u", "s", time.Now().Add(time.Hour)))
	p.mu.Lock()
	p.delay = 200 * time.Millisecond // keep the first call open while the rest arrive
	p.mu.Unlock()
	f := newFilter(t, nil, cfgFor(p, ""))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := run(t, f, "tok-hot")
			mu.Lock()
			if r.Status == sdk.Continue && r.Credential == "u" {
				ok++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ok != 50 {
		t.Fatalf("%d of 50 requests accepted", ok)
	}
	if n := p.callsFor("tok-hot"); n != 1 {
		t.Fatalf("50 concurrent requests caused %d introspection calls, want 1", n)
	}
}

func TestRequiredScopes(t *testing.T) {
	p := newIDP(t)
	p.set("tok-rw", active("u", "orders:read orders:write", time.Now().Add(time.Hour)))
	p.set("tok-r", active("u", "orders:read", time.Now().Add(time.Hour)))
	p.set("tok-none", active("u", "", time.Now().Add(time.Hour)))
	f := newFilter(t, nil, cfgFor(p, `,"required_scopes":["orders:read","orders:write"]`))
	plugintest.WantAccepted(t, run(t, f, "tok-rw"))
	for _, tok := range []string{"tok-r", "tok-none"} {
		r := run(t, f, tok)
		plugintest.WantRefused(t, r, 403, "insufficient scope")
		want := `Bearer realm="weir", error="insufficient_scope", error_description="insufficient scope", scope="orders:read orders:write"`
		if r.Challenge != want {
			t.Fatalf("challenge %q, want %q", r.Challenge, want)
		}
	}
	// The 403 is cached like the answer it comes from.
	plugintest.WantRefused(t, run(t, f, "tok-r"), 403, "insufficient scope")
	if n := p.callsFor("tok-r"); n != 1 {
		t.Fatalf("%d calls", n)
	}
}

func TestConsumerMapping(t *testing.T) {
	p := newIDP(t)
	exp := time.Now().Add(time.Hour)
	svc := consumer("billing-svc", `{"client_id":"billing-client"}`)
	human := consumer("carol", `{"sub":"0f5c-carol"}`)
	named := consumer("dave")
	cs := consumersOf(svc, human, named)
	p.set("t-client", map[string]any{"active": true, "client_id": "billing-client", "exp": exp.Unix()})
	p.set("t-sub", map[string]any{"active": true, "sub": "0f5c-carol", "client_id": "billing-client", "exp": exp.Unix()})
	p.set("t-name", map[string]any{"active": true, "sub": "dave", "exp": exp.Unix()})
	p.set("t-nobody", map[string]any{"active": true, "sub": "eve", "client_id": "web", "exp": exp.Unix()})
	p.set("t-client-only", map[string]any{"active": true, "client_id": "web", "exp": exp.Unix()})

	f := newFilter(t, &sdk.Build{Consumers: cs}, cfgFor(p, ""))
	cases := []struct {
		tok      string
		consumer *sdk.Consumer
		cred     string
	}{
		{"t-client", svc, "billing-client"},
		{"t-sub", human, "0f5c-carol"}, // sub wins over client_id
		{"t-name", named, "dave"},
		{"t-nobody", nil, "eve"},
		{"t-client-only", nil, "web"},
	}
	for _, tc := range cases {
		r := run(t, f, tc.tok)
		plugintest.WantAccepted(t, r)
		if r.Consumer != tc.consumer || r.Credential != tc.cred {
			t.Fatalf("%s: consumer %v credential %q", tc.tok, r.Consumer, r.Credential)
		}
	}
	noNames := newFilter(t, &sdk.Build{Consumers: cs}, cfgFor(p, `,"match_consumer_names":false`))
	if r := run(t, noNames, "t-name"); r.Consumer != nil {
		t.Fatal("match_consumer_names: false still matched by name")
	}
}

func TestTokenSources(t *testing.T) {
	p := newIDP(t)
	p.set("tok", active("u", "", time.Now().Add(time.Hour)))
	t.Run("query with hide_credentials", func(t *testing.T) {
		f := newFilter(t, nil, cfgFor(p, `,"query":"access_token","hide_credentials":true`))
		r := runURI(t, f, "http://gw.test/api?x=1&access_token=tok&y=2", nil)
		plugintest.WantAccepted(t, r)
		if strings.Contains(r.RequestURI, "access_token") {
			t.Fatalf("token left in the upstream URI: %s", r.RequestURI)
		}
	})
	t.Run("header before query", func(t *testing.T) {
		f := newFilter(t, nil, cfgFor(p, `,"header":"Authorization","query":"access_token"`))
		plugintest.WantAccepted(t, runURI(t, f, "http://gw.test/api?access_token=tok", map[string]string{"Authorization": "Basic eDp5"}))
		r := runURI(t, f, "http://gw.test/api?access_token=tok", map[string]string{"Authorization": "Bearer tok"})
		plugintest.WantAccepted(t, r)
		if r.RequestHeaders["Authorization"] == "" {
			t.Fatal("Authorization removed without hide_credentials")
		}
	})
	t.Run("custom header", func(t *testing.T) {
		f := newFilter(t, nil, cfgFor(p, `,"header":"X-Access-Token","hide_credentials":true`))
		plugintest.WantAccepted(t, runURI(t, f, "http://gw.test/api", map[string]string{"X-Access-Token": "tok"}))
	})
	t.Run("refusals", func(t *testing.T) {
		f := newFilter(t, nil, cfgFor(p, `,"max_token_bytes":64`))
		before := p.calls.Load()
		r := runURI(t, f, "http://gw.test/api", nil)
		plugintest.WantRefused(t, r, 401, "missing bearer token")
		if r.Challenge != `Bearer realm="weir"` {
			t.Fatalf("missing token challenge %q", r.Challenge)
		}
		plugintest.WantRefused(t, run(t, f, strings.Repeat("a", 65)), 401, "token too large")
		for _, bad := range []string{"a b", "a\"b", "=abc", "abc=d", "tok%20", "ü"} {
			plugintest.WantRefused(t, runURI(t, f, "http://gw.test/api", map[string]string{"Authorization": "Bearer " + bad}), 401, "malformed token")
		}
		if p.calls.Load() != before {
			t.Fatal("a refused token reached the introspection server")
		}
	})
}

func TestRegistered(t *testing.T) {
	fac, ok := sdk.Lookup("oauth2_introspection")
	if !ok {
		t.Fatal("oauth2_introspection is not registered")
	}
	if _, err := fac.New(&sdk.Build{}, json.RawMessage(`{"introspection_url":"https://idp.test/introspect"}`)); err != nil {
		t.Fatal(err)
	}
}

func TestCacheBounded(t *testing.T) {
	mc := newMemCache(32)
	for i := 0; i < 1000; i++ {
		var k [32]byte
		k[0], k[1] = byte(i), byte(i>>8)
		mc.put(&k, &entry{until: 1 << 62}, 0)
	}
	if n := mc.len(); n > 32 {
		t.Fatalf("cache grew to %d", n)
	}
}
