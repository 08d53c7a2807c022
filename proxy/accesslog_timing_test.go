package proxy

import (
	"testing"

	"github.com/weirgw/weir/sdk"
)

// BenchmarkHandlerForwardAccessLog is BenchmarkHandlerForward with the
// access log on (to a file): the difference is the log's cost on the
// request's goroutine (formatting and queueing; the writing is the
// writer goroutine's).
func BenchmarkHandlerForwardAccessLog(b *testing.B) {
	for _, format := range []string{"json", "combined"} {
		b.Run(format, func(b *testing.B) {
			srv, _ := accessLogServer(b, format)
			benchForward(b, srv)
		})
	}
}

// BenchmarkAccessLogJSONLine: formatting one json line alone.
func BenchmarkAccessLogJSONLine(b *testing.B) {
	srv, _ := accessLogServer(b, "json")
	h := srv.Handler()
	rc := newDirectCtx(b)
	prepare(rc, "/users/42?q=1")
	h(rc)
	snap := srv.Current()
	c := sdk.AcquireCtx(rc)
	c.SetPath([]byte("/users/42"))
	c.SetHost([]byte("gw.example.com"))
	c.Route, c.Service = "users", "s"
	st := &reqState{target: "http://127.0.0.1:8081"}
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = snap.alog.appendJSON(buf[:0], srv, c, st, 200, 1500000, 1000000)
	}
}
