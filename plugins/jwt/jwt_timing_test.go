package jwt

import (
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/weirgw/weir/sdk"
)

// benchVerify measures OnRequest for one token, with or without the cache.
func benchVerify(b *testing.B, alg string, signKey any, cred map[string]string, cache bool) {
	keys(b)
	cred["issuer"], cred["algorithm"] = "bench-app", alg
	cfg := `{"cache_size":0}`
	if cache {
		cfg = `{}`
	}
	f := newFilter(b, cfg, consumer("bench", nil, credJSON(cred)))
	c := claims("bench-app")
	c["scope"] = "read write"
	rc, ctx := newCtx(bearerHdr(sign(b, alg, signKey, c, nil)))
	sdk.ReleaseCtx(ctx)
	b.ReportAllocs()
	for b.Loop() {
		ctx := sdk.AcquireCtx(rc)
		if st, _ := f.OnRequest(ctx); st != sdk.Continue {
			b.Fatalf("refused: %s", rc.Response.Body())
		}
		sdk.ReleaseCtx(ctx)
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	benchVerify(b, "HS256", []byte(hs256Secret), map[string]string{"secret": hs256Secret}, false)
}

func BenchmarkVerifyRS256(b *testing.B) {
	keys(b)
	benchVerify(b, "RS256", rsaKey, map[string]string{"public_key": rsaPubPEM}, false)
}

func BenchmarkVerifyES256(b *testing.B) {
	keys(b)
	benchVerify(b, "ES256", ecKey256, map[string]string{"public_key": ec256PEM}, false)
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	keys(b)
	benchVerify(b, "EdDSA", edKey, map[string]string{"public_key": edPubPEM}, false)
}

func BenchmarkCachedHS256(b *testing.B) {
	benchVerify(b, "HS256", []byte(hs256Secret), map[string]string{"secret": hs256Secret}, true)
}

func BenchmarkCachedRS256(b *testing.B) {
	keys(b)
	benchVerify(b, "RS256", rsaKey, map[string]string{"public_key": rsaPubPEM}, true)
}

// BenchmarkRefuseMalformed is the cost of turning away junk (thousands of
// dots) before any parsing.
func BenchmarkRefuseMalformed(b *testing.B) {
	f := newFilter(b, `{}`)
	dots := make([]byte, 3000)
	for i := range dots {
		dots[i] = '.'
	}
	rc, ctx := newCtx(bearerHdr("a" + string(dots)))
	sdk.ReleaseCtx(ctx)
	b.ReportAllocs()
	for b.Loop() {
		ctx := sdk.AcquireCtx(rc)
		f.OnRequest(ctx)
		sdk.ReleaseCtx(ctx)
	}
}

// BenchmarkChurnHS256 is the default cache under churn: 40,000 distinct
// valid tokens in turn (ten times cache_size), so nearly every request is
// a miss that verifies and inserts, evicting another token. Compare with
// BenchmarkCachedHS256 (one token) and BenchmarkVerifyHS256 (no cache).
func BenchmarkChurnHS256(b *testing.B) {
	const distinct = 40000
	f := newFilter(b, `{}`, consumer("bench", nil,
		credJSON(map[string]string{"issuer": "bench-app", "algorithm": "HS256", "secret": hs256Secret})))
	rcs := make([]*fasthttp.RequestCtx, distinct)
	for i := range rcs {
		c := claims("bench-app")
		c["scope"] = "read write"
		c["sub"] = "user-" + strconv.Itoa(i)
		rc, ctx := newCtx(bearerHdr(sign(b, "HS256", []byte(hs256Secret), c, nil)))
		sdk.ReleaseCtx(ctx)
		rcs[i] = rc
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ctx := sdk.AcquireCtx(rcs[i])
		if st, _ := f.OnRequest(ctx); st != sdk.Continue {
			b.Fatal("refused")
		}
		sdk.ReleaseCtx(ctx)
		if i++; i == distinct {
			i = 0
		}
	}
}
