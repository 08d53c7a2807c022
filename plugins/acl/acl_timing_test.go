package acl

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

func benchmarkOnRequest(b *testing.B, cfg string, cons *sdk.Consumer, scopes ...string) {
	f := mustNew(b, "bench", cfg)
	var rc fasthttp.RequestCtx
	c := sdk.AcquireCtx(&rc)
	defer sdk.ReleaseCtx(c)
	if cons != nil {
		c.SetConsumer(cons, "x")
	}
	for _, s := range scopes {
		c.AddScope(s)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.OnRequest(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAllowedGroup(b *testing.B) {
	benchmarkOnRequest(b, `{"allow":["platinum","gold"],"deny":["banned"]}`, alice)
}

func BenchmarkAllowedScope(b *testing.B) {
	benchmarkOnRequest(b, `{"allow":["scope:orders:read"]}`, nil, "openid", "profile", "orders:read")
}

func BenchmarkForbidden(b *testing.B) {
	benchmarkOnRequest(b, `{"allow":["gold"]}`, bob)
}
