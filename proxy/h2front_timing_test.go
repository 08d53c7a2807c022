//lint:file-ignore SA1019 x/net/http2's client drives the benchmark (RATIONALE.md)

package proxy

import (
	"bytes"
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
	"syscall"
	"testing"

	"github.com/weirgw/weir/internal/testgrpc"
	"golang.org/x/net/http2"
)

// BenchmarkH2Conn: requests over one real h2c connection (x/net's client,
// prior knowledge) through the gateway's HTTP/2 server (h2conn.go) to a loopback
// upstream, one stream at a time and 100 at once. writes/op is the
// process's write(2) calls per request (client, gateway and upstream
// together, from /proc/self/io): the gateway's share is what its
// flushing costs.
func BenchmarkH2Conn(b *testing.B) {
	for _, streams := range []int{1, 100} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			tr, addr := serveH2C(b, benchServer(b))
			url := "http://" + addr + "/users/42"
			runCalls(b, streams, func() {
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
			})
		})
	}
}

// serveH2C serves srv's HTTP/2 (and HTTP/1.1) on a loopback port and
// returns an x/net client speaking h2c to it, and the address.
func serveH2C(b *testing.B, srv *Server) (*http2.Transport, string) {
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
	return tr, ln.Addr().String()
}

// runCalls runs call b.N times from workers goroutines and reports, next
// to ns and allocations, write(2) calls and CPU µs per call.
func runCalls(b *testing.B, workers int, call func()) {
	call() // the connections
	w0, c0 := procWrites(b), procCPU(b)
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				call()
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(procWrites(b)-w0)/float64(b.N), "writes/op")
	b.ReportMetric(float64(procCPU(b)-c0)/1e3/float64(b.N), "cpu-µs/op")
}

func mustRequest(b *testing.B, url string) *http.Request {
	r, err := http.NewRequest("GET", url, nil)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// procCPU is this process's CPU time so far (user and system), in ns:
// what a request costs whatever else the machine runs.
func procCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Skip(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
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

// grpcBenchConfig routes gRPC calls to UP, a grpc:// target.
const grpcBenchConfig = `
listen: "127.0.0.1:0"
services: [{name: g, targets: [{url: "grpc://UP"}]}]
routes:
  - {name: grpc, paths: ["/bench.Echo/"], service: g}
`

// BenchmarkH2GRPC: unary gRPC calls, 16 at once on one h2c connection
// (x/net's client, framed as gRPC: a 64-byte message without a
// content-length, grpc-timeout),
// through the gateway's grpc:// target to an in-process HTTP/2 upstream
// that answers with the message and grpc-status in trailers.
func BenchmarkH2GRPC(b *testing.B) {
	tr, addr := serveH2C(b, benchServerConfig(b, strings.Replace(grpcBenchConfig, "UP", testgrpc.Echo(b), 1)))
	url := "http://" + addr + "/bench.Echo/Unary"
	msg := append([]byte{0, 0, 0, 0, 64}, strings.Repeat("x", 64)...)
	var n atomic.Int64
	call := func() {
		r, err := http.NewRequest("POST", url, bytes.NewReader(msg))
		if err != nil {
			b.Error(err)
			return
		}
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Te", "trailers")
		r.ContentLength = -1 // no content-length, as gRPC clients send
		r.Header.Set("Grpc-Timeout", strconv.FormatInt(9_000_000+n.Add(1)%1000, 10)+"u")
		resp, err := tr.RoundTrip(r)
		if err != nil {
			b.Error(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) != len(msg) || resp.Trailer.Get("Grpc-Status") != "0" {
			b.Errorf("status %d, %d bytes, grpc-status %q", resp.StatusCode, len(body), resp.Trailer.Get("Grpc-Status"))
		}
	}
	runCalls(b, 16, call)
}
