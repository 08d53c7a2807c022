package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// BenchmarkHandlerForward: the handler alone (route + forward over a real
// loopback keep-alive connection), no client parsing.
func BenchmarkHandlerForward(b *testing.B) {
	benchForward(b, benchServer(b))
}

// benchForward runs srv's handler on GET /users/42, b.N times.
func benchForward(b *testing.B, srv *Server) {
	h := srv.Handler()
	rc := newDirectCtx(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		prepare(rc, "/users/42")
		h(rc)
	}
}

// BenchmarkHandlerNotFound: routing and the JSON 404, no upstream.
func BenchmarkHandlerNotFound(b *testing.B) {
	srv := benchServer(b)
	h := srv.Handler()
	rc := newDirectCtx(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		prepare(rc, "/nope")
		h(rc)
	}
}

// BenchmarkInmemoryRoundTrip: the whole request path, client to gateway
// over fasthttputil.InmemoryListener and gateway to a loopback upstream.
func BenchmarkInmemoryRoundTrip(b *testing.B) {
	srv := benchServer(b)
	ln := fasthttputil.NewInmemoryListener()
	go func() { _ = srv.Serve(ln) }()
	c := &fasthttp.HostClient{Addr: "gw", Dial: func(string) (net.Conn, error) { return ln.Dial() }, ReadTimeout: 5 * time.Second}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://gw/users/42")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("%v %d", err, resp.StatusCode())
		}
	}
}

// benchServer is a gateway on allocConfig in front of a static upstream,
// shut down when the benchmark ends.
func benchServer(b *testing.B) *Server {
	return benchServerConfig(b, allocConfig)
}

// benchServerConfig is benchServer on cfg (UP: the upstream's URL).
func benchServerConfig(b *testing.B, cfg string) *Server {
	up := staticUpstream(b)
	srv, err := New(mustParse(b, sub(cfg, "UP", up.URL)), "test.yaml", quietLog())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Shutdown(ctxTimeout(2e9)) })
	return srv
}
