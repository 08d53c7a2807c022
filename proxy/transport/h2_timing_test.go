package transport

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/testgrpc"
)

// BenchmarkH2Upstream is the upstream leg of a gRPC unary call alone:
// DoContext with a 69-byte request body, whole (as the gateway hands
// over a unary call's body that came with its END_STREAM) or streamed
// (one still coming: a sender goroutine), the streamed answer read to
// its trailers. Concurrent calls share the pooled connection as the
// gateway's do.
func BenchmarkH2Upstream(b *testing.B) {
	for _, bc := range []struct {
		name     string
		conc     int
		streamed bool
	}{{"calls=1", 1, false}, {"calls=16", 16, false}, {"calls=16/streamed", 16, true}} {
		conc := bc.conc
		b.Run(bc.name, func(b *testing.B) {
			tr := New(Config{Addr: testgrpc.Echo(b), HTTP2: true})
			defer tr.Close()
			msg := append([]byte{0, 0, 0, 0, 64}, strings.Repeat("x", 64)...)
			call := func(req *fasthttp.Request, resp *fasthttp.Response, buf []byte) {
				req.Header.SetMethod("POST")
				req.SetRequestURI("/bench.Echo/Unary")
				req.Header.SetHost("up")
				req.Header.SetContentType("application/grpc")
				req.Header.Set("Grpc-Timeout", "9000000u")
				if bc.streamed {
					req.SetBodyStream(bytes.NewReader(msg), -1)
				} else {
					req.SetBodyRaw(msg)
				}
				if err := tr.DoContext(context.Background(), req, resp, nil, time.Now().Add(5*time.Second)); err != nil {
					b.Error(err)
					return
				}
				body := resp.BodyStream()
				n, _ := io.ReadFull(body, buf)
				_, _ = body.Read(buf[n:]) // the end, and the trailers
				hb, ok := body.(*H2Body)
				if !ok || n != len(msg) || hb.Trailer().Get("Grpc-Status") != "0" {
					b.Errorf("status %d, %d bytes, body %T", resp.StatusCode(), n, body)
				}
				resp.Reset()
				req.Reset()
			}
			var ru0 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := (b.N + conc - 1) / conc
			for g := 0; g < conc; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, resp := new(fasthttp.Request), new(fasthttp.Response)
					buf := make([]byte, 256)
					for i := 0; i < per; i++ {
						call(req, resp, buf)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			var ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := func(r *syscall.Rusage) int64 { return r.Utime.Nano() + r.Stime.Nano() }
			b.ReportMetric(float64(cpu(&ru1)-cpu(&ru0))/1e3/float64(per*conc), "cpu-µs/op")
		})
	}
}
