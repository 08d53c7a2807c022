//lint:file-ignore SA1019 the upstream is x/net's HTTP/2 server (h2c, as grpc-go's is)

// Package testgrpc is an in-process h2c upstream for benchmarks of the
// gRPC path: it answers every call like a gRPC unary method, with the
// request's message back and grpc-status 0 in the trailers.
package testgrpc

import (
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
)

// Echo starts the upstream on a free loopback port, closed with tb, and
// returns its address.
func Echo(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	up := &http2.Server{}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = w.Write(msg)
		w.Header().Set("Grpc-Status", "0")
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go up.ServeConn(c, &http2.ServeConnOpts{Handler: echo})
		}
	}()
	return ln.Addr().String()
}
