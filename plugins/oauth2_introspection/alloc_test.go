package oauth2introspection

import (
	"testing"
	"time"

	"github.com/weirgw/weir/sdk"
)

// TestMemoryHitZeroAllocs: a token answered from the in-process cache is
// authenticated (consumer, scopes) without allocating.
func TestMemoryHitZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); make unit runs this test")
	}
	p := newIDP(t)
	p.set("tok-hot", active("alice", "read write", time.Now().Add(time.Hour)))
	alice := consumer("alice")
	f := newFilter(t, &sdk.Build{Consumers: consumersOf(alice)}, cfgFor(p, `,"required_scopes":["read"]`))
	rc, c := newCtx("http://gw.test/api", map[string]string{"Authorization": "Bearer tok-hot"})
	if st, _ := f.OnRequest(c); st != sdk.Continue {
		t.Fatalf("refused: %s", rc.Response.Body())
	}
	sdk.ReleaseCtx(c)
	allocs := testing.AllocsPerRun(200, func() {
		c := sdk.AcquireCtx(rc)
		if st, _ := f.OnRequest(c); st != sdk.Continue || c.Consumer() != alice || len(c.Scopes()) != 2 {
			t.Fatal("cache hit lost the identity")
		}
		sdk.ReleaseCtx(c)
	})
	if allocs != 0 {
		t.Fatalf("memory cache hit allocated %.1f times per request", allocs)
	}
}
