package proxy

import (
	"context"
	"net"
	"testing"

	"github.com/weirgw/weir/internal/fusedio"
)

// TestDialRedisRaw: the shared Redis client's connections read and write
// with raw system calls (fusedio.RawConn), so rueidis' two pipeline
// goroutines keep no extra thread busy at GOMAXPROCS=1.
func TestDialRedisRaw(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := dialRedis(context.Background(), ln.Addr().String(), &net.Dialer{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*fusedio.RawConn); !ok {
		t.Fatalf("a Redis connection is a %T, want *fusedio.RawConn", c)
	}
}
