package cache

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/sdk"
)

// go test -run x -bench . -benchtime=200ms ./plugins/cache/

var benchRespHeaders = []string{"Cache-Control: max-age=600", `ETag: "v1"`, "Content-Type: application/json",
	"X-Request-Id: 1234567890abcdef", "Vary: Accept-Encoding"}

const benchBody = `{"id":1,"name":"a typical small JSON document","tags":["x","y","z"],"active":true}`

func benchFilter(b *testing.B, cfg string, redisAddr string) *Filter {
	b.Helper()
	var f *Filter
	if redisAddr != "" {
		f, _ = newTestFilterRedis(b, cfg, newRedisClient(b, redisAddr))
	} else {
		f, _ = newTestFilter(b, cfg)
	}
	f.now = time.Now
	return f
}

func benchHit(b *testing.B, f *Filter, hdr ...string) {
	var h []string
	for i := 0; i+1 < len(hdr); i += 2 {
		h = append(h, hdr[i]+": "+hdr[i+1])
	}
	do(b, f, req{url: u, hdr: h}, fixed(200, benchBody, benchRespHeaders...))
	_, hit := hitCtx(f, u, hdr...)
	if hit() != sdk.Stop {
		b.Fatal("not a hit")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hit()
	}
}

func BenchmarkHitMemory(b *testing.B) {
	benchHit(b, benchFilter(b, `{}`, ""), "Accept-Encoding", "gzip")
}

func BenchmarkHitMemoryNotModified(b *testing.B) {
	benchHit(b, benchFilter(b, `{}`, ""), "Accept-Encoding", "gzip", "If-None-Match", `"v1"`)
}

func BenchmarkHitMemoryParallel(b *testing.B) {
	f := benchFilter(b, `{}`, "")
	do(b, f, req{url: u, hdr: []string{"Accept-Encoding: gzip"}}, fixed(200, benchBody, benchRespHeaders...))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		_, hit := hitCtx(f, u, "Accept-Encoding", "gzip")
		for pb.Next() {
			if hit() != sdk.Stop {
				b.Error("not a hit")
				return
			}
		}
	})
}

func BenchmarkHitRedis(b *testing.B) {
	srv := testredis.Start(b)
	benchHit(b, benchFilter(b, `{"store":"redis"}`, srv.Addr), "Accept-Encoding", "gzip")
}

// benchMiss measures a miss that is stored: OnRequest (lookup, flight),
// the upstream response landing in the context, OnResponse (analysis,
// encoding, store), OnLog. Every iteration is a new URL.
func benchMiss(b *testing.B, f *Filter) {
	var tmpl fasthttp.Response
	raw := "HTTP/1.1 200 OK\r\n" + strings.Join(benchRespHeaders, "\r\n") + "\r\nContent-Length: " +
		strconv.Itoa(len(benchBody)) + "\r\n\r\n" + benchBody
	if err := tmpl.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	rc := new(fasthttp.RequestCtx)
	url := []byte("http://api.example.com/items/")
	base := len(url)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		url = strconv.AppendInt(url[:base], int64(i), 10)
		rc.Request.Reset()
		rc.Request.SetRequestURIBytes(url)
		rc.Request.Header.Set("Accept-Encoding", "gzip")
		rc.Response.Reset()
		c := sdk.AcquireCtx(rc)
		c.SetPath(rc.Request.URI().Path())
		if st, _ := f.OnRequest(c); st != sdk.Continue {
			b.Fatal("not a miss")
		}
		tmpl.CopyTo(&rc.Response)
		_ = f.OnResponse(c)
		f.OnLog(c)
		sdk.ReleaseCtx(c)
	}
}

func BenchmarkMissMemory(b *testing.B) {
	benchMiss(b, benchFilter(b, `{}`, ""))
}

func BenchmarkMissRedis(b *testing.B) {
	srv := testredis.Start(b)
	benchMiss(b, benchFilter(b, `{"store":"redis"}`, srv.Addr))
}

func BenchmarkBypass(b *testing.B) {
	f := benchFilter(b, `{}`, "")
	rc := new(fasthttp.RequestCtx)
	rc.Request.Header.SetMethod("POST")
	rc.Request.SetRequestURI(u)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := sdk.AcquireCtx(rc)
		c.SetPath(rc.Request.URI().Path())
		_, _ = f.OnRequest(c)
		_ = f.OnResponse(c)
		f.OnLog(c)
		sdk.ReleaseCtx(c)
	}
}

func BenchmarkParseResponseCacheControl(b *testing.B) {
	v := []byte(`public, max-age=600, s-maxage=3600, stale-while-revalidate=30, no-cache="Set-Cookie"`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var d respDirectives
		parseResponseCC(&d, v)
	}
}

func BenchmarkParseHTTPDate(b *testing.B) {
	v := []byte("Sun, 06 Nov 1994 08:49:37 GMT")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		parseHTTPDate(v, 2026)
	}
}

func BenchmarkMemoryStoreGetParallel(b *testing.B) {
	s := newMemoryStore(64<<20, 1<<20)
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("api.example.com/items/" + strconv.Itoa(i))
		_ = s.set(keys[i], testEntry(b, 512, far, ""), 0, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.get(keys[i&1023], 0, nil)
			i++
		}
	})
}
