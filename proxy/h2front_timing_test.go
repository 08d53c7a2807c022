//lint:file-ignore SA1019 x/net/http2's client drives the benchmark (RATIONALE.md)

package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
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

// BenchmarkH2Conn: requests over one real h2c connection (x/net's client,
// prior knowledge) through the gateway's HTTP/2 server to a loopback
// upstream, one stream at a time and 100 at once. writes/op is the
// process's write(2) calls per request (client, gateway and upstream
// together, from /proc/self/io): the gateway's share is what its
// flushing costs.
func BenchmarkH2Conn(b *testing.B) {
	for _, streams := range []int{1, 100} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			srv := benchServer(b)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = srv.ServeHTTP2(ln) }()
			tr := &http2.Transport{
				AllowHTTP: true,
				DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				},
			}
			b.Cleanup(tr.CloseIdleConnections)
			url := "http://" + ln.Addr().String() + "/users/42"
			get := func() {
				resp, err := tr.RoundTrip(mustRequest(b, url))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
			get() // the connection
			w0 := procWrites(b)
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						get()
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(procWrites(b)-w0)/float64(b.N), "writes/op")
		})
	}
}

func mustRequest(b *testing.B, url string) *http.Request {
	r, err := http.NewRequest("GET", url, nil)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// procWrites is this process's write system calls so far (syscw).
func procWrites(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io")
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Skip("no syscw in /proc/self/io")
	return 0
}
