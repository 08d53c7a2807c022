package responsetransformer

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// BenchmarkOnResponse measures one response: the reset of what the
// previous run changed, a pooled Ctx, OnResponse.
func BenchmarkOnResponse(b *testing.B) {
	for _, ac := range allocCases {
		b.Run(ac.name, func(b *testing.B) {
			f := mustNew(b, usersRoute(), ac.cfg)
			var rc fasthttp.RequestCtx
			rc.Response.Header.SetContentType("application/json")
			b.ReportAllocs()
			for b.Loop() {
				ac.reset(&rc.Response)
				c := sdk.AcquireCtx(&rc)
				if err := f.OnResponse(c); err != nil {
					b.Fatal(err)
				}
				sdk.ReleaseCtx(c)
			}
		})
	}
}
