package jwt

import (
	"testing"

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
