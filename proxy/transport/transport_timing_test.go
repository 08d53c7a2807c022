package transport

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkDo64B: one keep-alive GET with a 64-byte answer over loopback.
func BenchmarkDo64B(b *testing.B) {
	body := make([]byte, 64)
	addr := serveB(b, func(rc *fasthttp.RequestCtx) { rc.SetBody(body) })
	tr := New(Config{Addr: addr})
	defer tr.Close()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("/")
	req.Header.SetHost("up")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := tr.Do(req, resp, time.Now().Add(time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDoZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); make unit runs this test")
	}
	body := make([]byte, 64)
	addr := serve(t, func(rc *fasthttp.RequestCtx) { rc.SetBody(body) })
	tr := New(Config{Addr: addr})
	defer tr.Close()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("/")
	req.Header.SetHost("up")
	for i := 0; i < 20; i++ {
		_ = tr.Do(req, resp, time.Now().Add(time.Second))
	}
	if n := testing.AllocsPerRun(200, func() {
		if err := tr.Do(req, resp, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%.1f allocs per Do, want 0", n)
	}
}
