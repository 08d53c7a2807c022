package jwt

import (
	"strings"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// TestIndexFollowsConsumerChanges: a change of one consumer (the admin
// API's) updates the credential index rather than rebuilding it, refuses
// what a build from every consumer refuses, and a kept instance's token
// cache stops honouring a deleted or replaced consumer's token at once
// while other cached tokens stay hits.
func TestIndexFollowsConsumerChanges(t *testing.T) {
	other := hsSecret[:32]
	alice := consumer("alice", nil, credJSON(map[string]string{"issuer": "alice-app", "secret": hs256Secret}))
	bob := consumer("bob", nil, credJSON(map[string]string{"issuer": "bob-app", "secret": hs256Secret}))
	cs := sdk.NewConsumers([]*sdk.Consumer{alice, bob})
	fl, err := New(&sdk.Build{Route: "r", Consumers: cs}, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	f := fl.(*filter)
	noList := func() []*sdk.Consumer { t.Fatal("the change read every consumer"); return nil }
	aliceTok := sign(t, "HS256", []byte(hs256Secret), claims("alice-app"), nil)
	bobTok := sign(t, "HS256", []byte(hs256Secret), claims("bob-app"), nil)
	// who runs tok through f with the consumers set, as the proxy does.
	who := func(set *sdk.Consumers, tok string) (int, string) {
		t.Helper()
		_, c := newCtx(bearerHdr(tok))
		defer sdk.ReleaseCtx(c)
		c.Consumers = set
		if _, err := f.OnRequest(c); err != nil {
			t.Fatal(err)
		}
		name := ""
		if c.Consumer() != nil {
			name = c.Consumer().Name
		}
		return c.Response().StatusCode(), name
	}
	hits := func() uint64 { return f.cacheHit.Get() }
	for _, tok := range []string{aliceTok, bobTok} {
		if code, name := who(cs, tok); code != 200 || name == "" {
			t.Fatalf("before any change: %d %q", code, name)
		}
	}

	// Deleted: alice's cached token is refused at once; bob's stays a hit.
	removed, err := cs.With(cs.Get("alice"), nil, noList)
	if err != nil {
		t.Fatal(err)
	}
	if code, name := who(removed, aliceTok); code != 401 || name != "" {
		t.Fatalf("a deleted consumer's cached token: %d %q", code, name)
	}
	h := hits()
	if code, name := who(removed, bobTok); code != 200 || name != "bob" || hits() != h+1 {
		t.Fatalf("an unchanged consumer's token after the change: %d %q, cache hits %d → %d", code, name, h, hits())
	}
	if code, name := who(cs, aliceTok); code != 200 || name != "alice" {
		t.Fatalf("the running consumers lost alice: %d %q", code, name)
	}

	// Replaced with a new secret: the old token stops, a new one works.
	alice2 := consumer("alice", nil, credJSON(map[string]string{"issuer": "alice-app", "secret": other}))
	replaced, err := cs.With(cs.Get("alice"), alice2, noList)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := who(replaced, aliceTok); code != 401 {
		t.Fatalf("a replaced consumer's cached token: %d", code)
	}
	if code, name := who(replaced, sign(t, "HS256", []byte(other), claims("alice-app"), nil)); code != 200 || name != "alice" {
		t.Fatalf("the replaced consumer's new secret: %d %q", code, name)
	}

	// Refused as a build would refuse it: an issuer another holds, a bad
	// credential; the issuer of a removed consumer is free again.
	if _, err := cs.With(nil, consumer("eve", nil, credJSON(map[string]string{"issuer": "bob-app", "secret": hs256Secret})), noList); err == nil ||
		!strings.Contains(err.Error(), `consumer "eve": jwt credential 0: issuer "bob-app" is already used by consumer "bob"`) {
		t.Fatalf("a taken issuer: %v", err)
	}
	if _, err := cs.With(nil, consumer("eve", nil, credJSON(map[string]string{"issuer": "e", "secret": "short"})), noList); err == nil ||
		!strings.Contains(err.Error(), `consumer "eve": jwt credential 0: secret must be at least 32 bytes`) {
		t.Fatalf("a short secret: %v", err)
	}
	if _, err := removed.With(nil, consumer("eve", nil, credJSON(map[string]string{"issuer": "alice-app", "secret": hs256Secret})), noList); err != nil {
		t.Fatalf("a removed consumer's issuer: %v", err)
	}
}

// TestConsumerClaimFollowsConsumerChanges: with consumer_claim, a cached
// token naming a consumer follows that consumer's deletion and creation.
func TestConsumerClaimFollowsConsumerChanges(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t, testJWK{"rsa-1", "RS256", &rsaKey.PublicKey})
	cs := sdk.NewConsumers([]*sdk.Consumer{consumer("carol", []string{"ops"})})
	f := plugintest.New[*filter](t, New, &sdk.Build{Route: "r", Consumers: cs}, jwksCfg(srv.URL, `,"consumer_claim":"sub"`))
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	tok := func(sub string) string {
		return sign(t, "RS256", rsaKey, gojwt.MapClaims(idpClaims(sub)), map[string]any{"kid": "rsa-1"})
	}
	carolTok, daveTok := tok("carol"), tok("dave")
	named := func(set *sdk.Consumers, tok string) string {
		t.Helper()
		_, c := newCtx(bearerHdr(tok))
		defer sdk.ReleaseCtx(c)
		c.Consumers = set
		if st, err := f.OnRequest(c); err != nil || st != sdk.Continue {
			t.Fatalf("token refused: %v %d", err, c.Response().StatusCode())
		}
		if c.Consumer() == nil {
			return ""
		}
		return c.Consumer().Name
	}
	noList := func() []*sdk.Consumer { t.Fatal("the change read every consumer"); return nil }
	if named(cs, carolTok) != "carol" || named(cs, daveTok) != "" {
		t.Fatal("before any change")
	}
	next, err := cs.With(cs.Get("carol"), nil, noList)
	if err != nil {
		t.Fatal(err)
	}
	if next, err = next.With(nil, consumer("dave", nil), noList); err != nil {
		t.Fatal(err)
	}
	if got := named(next, carolTok); got != "" {
		t.Fatalf("a deleted consumer's cached token still names %q", got)
	}
	if got := named(next, daveTok); got != "dave" {
		t.Fatalf("an added consumer's cached token names %q", got)
	}
}

// TestCheckConsumersFollowsAlgorithmsInUse: a kept instance asked about
// a changed set of consumers (sdk.ConsumersChecker) refuses exactly the
// credentials New would refuse: one added with an algorithm outside its
// allow-list, named with the fix, and nothing once it is replaced or
// deleted (the counts of algorithms in use follow the change both ways).
func TestCheckConsumersFollowsAlgorithmsInUse(t *testing.T) {
	alice := consumer("alice", nil, credJSON(map[string]string{"issuer": "alice-app", "algorithm": "HS256", "secret": hs256Secret}))
	cs := sdk.NewConsumers([]*sdk.Consumer{alice})
	fl, err := New(&sdk.Build{Route: "r", Consumers: cs}, []byte(`{"algorithms":["HS256"]}`))
	if err != nil {
		t.Fatal(err)
	}
	f := fl.(*filter)
	noList := func() []*sdk.Consumer { t.Fatal("the change read every consumer"); return nil }
	bob := consumer("bob", nil, credJSON(map[string]string{"issuer": "bob-app", "algorithm": "HS512", "secret": hsSecret}))
	added, err := cs.With(nil, bob, noList)
	if err != nil {
		t.Fatal(err)
	}
	const want = `consumer "bob": jwt credential 0: algorithm HS512 is not in the plugin's algorithms list [HS256]; add HS512 to the list, or give the credential an algorithm of the list`
	if err := f.CheckConsumers(added); err == nil || err.Error() != want {
		t.Fatalf("bob's HS512 credential: %v\nwant %s", err, want)
	}
	if _, err := New(&sdk.Build{Route: "r", Consumers: added}, []byte(`{"algorithms":["HS256"]}`)); err == nil || err.Error() != want {
		t.Fatalf("New with bob: %v\nwant the same refusal", err)
	}
	if err := f.CheckConsumers(cs); err != nil {
		t.Fatalf("the set without bob: %v", err)
	}
	bob256 := consumer("bob", nil, credJSON(map[string]string{"issuer": "bob-app", "algorithm": "HS256", "secret": hs256Secret}))
	replaced, err := added.With(bob, bob256, noList)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.CheckConsumers(replaced); err != nil {
		t.Fatalf("bob replaced with HS256: %v", err)
	}
	deleted, err := added.With(bob, nil, noList)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.CheckConsumers(deleted); err != nil {
		t.Fatalf("bob deleted: %v", err)
	}
	if err := f.CheckConsumers(added); err == nil {
		t.Fatal("the set with bob is refused no more once others were derived from it")
	}
}
