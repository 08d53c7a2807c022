package requestsizelimit

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

func BenchmarkOnRequest(b *testing.B) {
	f, _ := New(&sdk.Build{}, json.RawMessage(`{"max_bytes": 1024}`))
	rc := &fasthttp.RequestCtx{}
	rc.Request.SetBodyString("small body")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c := sdk.AcquireCtx(rc)
		_, _ = f.OnRequest(c)
		sdk.ReleaseCtx(c)
	}
}

func TestZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); make unit runs this test")
	}
	f, _ := New(&sdk.Build{}, json.RawMessage(`{"max_bytes": 1024}`))
	rc := &fasthttp.RequestCtx{}
	rc.Request.SetBodyString("small body")
	if n := testing.AllocsPerRun(100, func() {
		c := sdk.AcquireCtx(rc)
		_, _ = f.OnRequest(c)
		sdk.ReleaseCtx(c)
	}); n != 0 {
		t.Fatalf("%.1f allocs", n)
	}
}
