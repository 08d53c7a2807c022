package fusedio

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkHeldAnswer: one keep-alive exchange on the server side of a
// connection: an answer held by Hold, sent by the read of the next
// request. 64 B is a small API answer, 10 KiB the users' average.
func BenchmarkHeldAnswer(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
	}{{"64B", 64}, {"10KiB", 10 << 10}} {
		size := tc.size
		b.Run(tc.name, func(b *testing.B) {
			c, srv := pair(b, 0)
			answer := bytes.Repeat([]byte("a"), size)
			req := []byte("GET / HTTP/1.1\r\n\r\n")
			go askAfterEachAnswer(srv, size, req)
			in := make([]byte, len(req))
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				c.Hold()
				if _, err := c.Write(answer); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTinyReadExchange: BenchmarkHeldAnswer's exchange read the way
// fasthttp's server reads with ReduceMemoryUsage: the request's first
// byte alone (a read-ahead), then the rest.
func BenchmarkTinyReadExchange(b *testing.B) {
	c, srv := pair(b, 0)
	answer := bytes.Repeat([]byte("a"), 64)
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	go askAfterEachAnswer(srv, len(answer), req)
	one, rest := make([]byte, 1), make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		c.Hold()
		if _, err := c.Write(answer); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(one); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, rest[:len(req)-1]); err != nil {
			b.Fatal(err)
		}
	}
}
