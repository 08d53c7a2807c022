package oauth2introspection

import (
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/sdk"
)

// TestIndexFollowsConsumerChanges: a change of one consumer (the admin
// API's) updates the index rather than rebuilding it, refuses what a
// build from every consumer refuses, and a kept instance's cached answers
// follow the change at once (without asking the server again): a deleted
// consumer's token identifies nobody, an added consumer's token
// identifies it, an unchanged one's stays.
func TestIndexFollowsConsumerChanges(t *testing.T) {
	p := newIDP(t)
	exp := time.Now().Add(time.Hour)
	p.set("t-svc", map[string]any{"active": true, "client_id": "billing-client", "exp": exp.Unix()})
	p.set("t-carol", map[string]any{"active": true, "sub": "0f5c-carol", "exp": exp.Unix()})
	p.set("t-dave", map[string]any{"active": true, "sub": "dave", "exp": exp.Unix()})
	cs := consumersOf(consumer("billing-svc", `{"client_id":"billing-client"}`), consumer("carol", `{"sub":"0f5c-carol"}`))
	f := newFilter(t, &sdk.Build{Consumers: cs}, cfgFor(p, ""))
	noList := func() []*sdk.Consumer { t.Fatal("the change read every consumer"); return nil }
	who := func(set *sdk.Consumers, tok string) string {
		t.Helper()
		_, c := newCtx("http://gw.test/api", map[string]string{"Authorization": "Bearer " + tok})
		defer sdk.ReleaseCtx(c)
		c.Consumers = set
		if st, err := f.OnRequest(c); err != nil || st != sdk.Continue {
			t.Fatalf("%s refused: %v %d", tok, err, c.Response().StatusCode())
		}
		if c.Consumer() == nil {
			return ""
		}
		return c.Consumer().Name
	}
	for tok, want := range map[string]string{"t-svc": "billing-svc", "t-carol": "carol", "t-dave": ""} {
		if got := who(cs, tok); got != want {
			t.Fatalf("before any change: %s identifies %q, want %q", tok, got, want)
		}
	}
	calls := p.calls.Load()

	next, err := cs.With(cs.Get("carol"), nil, noList)
	if err != nil {
		t.Fatal(err)
	}
	if next, err = next.With(nil, consumer("dave"), noList); err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]string{"t-svc": "billing-svc", "t-carol": "", "t-dave": "dave"} {
		if got := who(next, tok); got != want {
			t.Fatalf("after carol's deletion and dave's addition: %s identifies %q, want %q", tok, got, want)
		}
	}
	if got := who(cs, "t-carol"); got != "carol" {
		t.Fatalf("the running consumers lost carol: %q", got)
	}
	if n := p.calls.Load(); n != calls {
		t.Fatalf("the change sent %d more introspections; the answers are cached", n-calls)
	}

	// Refused as a build would refuse it; a removed consumer's sub is
	// free again.
	if _, err := cs.With(nil, consumer("eve", `{"client_id":"billing-client"}`), noList); err == nil ||
		!strings.Contains(err.Error(), `consumer "eve": oauth2_introspection credential 0: "billing-client" already identifies consumer "billing-svc"`) {
		t.Fatalf("a taken client_id: %v", err)
	}
	if _, err := cs.With(nil, consumer("eve", `{"sub":"a","client_id":"b"}`), noList); err == nil ||
		!strings.Contains(err.Error(), `set exactly one of sub or client_id`) {
		t.Fatalf("a bad credential: %v", err)
	}
	if _, err := next.With(nil, consumer("eve", `{"sub":"0f5c-carol"}`), noList); err != nil {
		t.Fatalf("a removed consumer's sub: %v", err)
	}
}
