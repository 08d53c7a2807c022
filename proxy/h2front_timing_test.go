package proxy

import (
	"net"
	"net/http"
	"testing"
)

// nopWriter is a reusable http.ResponseWriter.
type nopWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) WriteHeader(s int)           { w.status = s }
func (w *nopWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *nopWriter) Flush()                      {}

// BenchmarkH2Bridge: one HTTP/2 stream through the bridge (http.Request
// in, the pipeline, the answer written back), forwarded over a real
// loopback keep-alive connection: what an HTTP/2 request costs on top of
// BenchmarkHandlerForward.
func BenchmarkH2Bridge(b *testing.B) {
	srv := benchServer(b)
	c1, c2 := net.Pipe()
	b.Cleanup(func() { c1.Close(); c2.Close() })
	r, err := http.NewRequest("GET", "http://bench.local/users/42", nil)
	if err != nil {
		b.Fatal(err)
	}
	r.RequestURI = "/users/42"
	r.Header.Set("User-Agent", "bench")
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		srv.serveH2(c1, w, r)
	}
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
}
