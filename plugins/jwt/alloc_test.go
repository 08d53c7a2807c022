package jwt

import (
	"testing"

	"github.com/weirgw/weir/sdk"
)

// TestCacheHitZeroAllocs: a repeated token (scopes, claims_to_headers,
// consumer) is authenticated without allocating.
func TestCacheHitZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); make unit runs this test")
	}
	alice := attackConsumers(t)[0]
	f := newFilter(t, `{"claims_to_headers":{"sub":"X-User"}}`, alice)
	c := claims("alice-app")
	c["scope"] = "read write"
	rc, ctx := newCtx(bearerHdr(sign(t, "HS256", []byte(hs256Secret), c, nil)))
	if st, _ := f.OnRequest(ctx); st != sdk.Continue {
		t.Fatalf("refused: %s", rc.Response.Body())
	}
	sdk.ReleaseCtx(ctx)
	allocs := testing.AllocsPerRun(200, func() {
		ctx := sdk.AcquireCtx(rc)
		st, _ := f.OnRequest(ctx)
		if st != sdk.Continue || ctx.Consumer() != alice || len(ctx.Scopes()) != 2 {
			t.Fatal("cache hit lost the identity")
		}
		sdk.ReleaseCtx(ctx)
	})
	if allocs != 0 {
		t.Fatalf("cache hit allocated %.1f times per request", allocs)
	}
	if string(rc.Request.Header.Peek("X-User")) != "user-1" {
		t.Fatal("claim header missing")
	}
}

// TestUnseenTokenAllocs: verifying an HS256 token never seen before (no
// cache) reads the header and claims in place and keys no new hash; what
// allocates is the identity it grants: the identity, its scope string
// and the scope list (golang-jwt's map parse took 62; 8 before string
// reads and the MAC sum stopped escaping).
func TestUnseenTokenAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); make unit runs this test")
	}
	alice := attackConsumers(t)[0]
	f := newFilter(t, `{"cache_size":0}`, alice)
	c := claims("alice-app")
	c["scope"] = "read write"
	rc, ctx := newCtx(bearerHdr(sign(t, "HS256", []byte(hs256Secret), c, nil)))
	sdk.ReleaseCtx(ctx)
	allocs := testing.AllocsPerRun(200, func() {
		ctx := sdk.AcquireCtx(rc)
		if st, _ := f.OnRequest(ctx); st != sdk.Continue || ctx.Consumer() != alice {
			t.Fatal("refused")
		}
		sdk.ReleaseCtx(ctx)
	})
	if allocs > 3 {
		t.Fatalf("an unseen token allocated %.1f times per request, want at most 3", allocs)
	}
}
