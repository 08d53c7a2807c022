package cors

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

const benchConfig = `{"origins":["https://app.example.com","https://admin.example.com","https://*.example.org"],"credentials":true,"exposed_headers":["X-Total"],"max_age":600}`

// benchmarkRequest measures one request as the proxy drives it: pooled Ctx,
// OnRequest, the deferred headers applied to a fresh response, OnResponse.
func benchmarkRequest(b *testing.B, cfg, method string, headers map[string]string) {
	f := mustNew(b, "bench", cfg)
	var rc fasthttp.RequestCtx
	rc.Request.Header.SetMethod(method)
	for k, v := range headers {
		rc.Request.Header.Set(k, v)
	}
	b.ReportAllocs()
	for b.Loop() {
		c := sdk.AcquireCtx(&rc)
		if st, _ := f.OnRequest(c); st == sdk.Continue {
			rc.Response.Reset()
		}
		c.ApplyResponseHeaders()
		_ = f.OnResponse(c)
		sdk.ReleaseCtx(c)
	}
}

func BenchmarkActualAllowed(b *testing.B) {
	benchmarkRequest(b, benchConfig, "GET", map[string]string{"Origin": "https://app.example.com"})
}

func BenchmarkActualWildcard(b *testing.B) {
	benchmarkRequest(b, benchConfig, "GET", map[string]string{"Origin": "https://tenant.example.org"})
}

func BenchmarkActualAnyOrigin(b *testing.B) {
	benchmarkRequest(b, `{"origins":["*"]}`, "GET", map[string]string{"Origin": "https://app.example.com"})
}

func BenchmarkActualDisallowed(b *testing.B) {
	benchmarkRequest(b, benchConfig, "GET", map[string]string{"Origin": "https://evil.example"})
}

func BenchmarkNoOrigin(b *testing.B) {
	benchmarkRequest(b, benchConfig, "GET", nil)
}

func BenchmarkPreflight(b *testing.B) {
	benchmarkRequest(b, benchConfig, "OPTIONS", map[string]string{
		"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type, x-token",
	})
}

// BenchmarkAllowed is the origin check alone.
func BenchmarkAllowed(b *testing.B) {
	f := mustNew(b, "bench", benchConfig)
	origin := []byte("https://tenant.example.org")
	b.ReportAllocs()
	for b.Loop() {
		if !f.allowed(origin) {
			b.Fatal("not allowed")
		}
	}
}
