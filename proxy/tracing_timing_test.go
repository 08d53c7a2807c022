package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHandlerForwardTracing: BenchmarkHandlerForward with tracing
// configured, at sample 0 (nothing recorded: the cost of the decision),
// 0.01 and 1 (a server and a client span per request, exported to a
// loopback OTLP sink).
func BenchmarkHandlerForwardTracing(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(sink.Close)
	for _, sample := range []string{"0", "0.01", "1"} {
		b.Run("sample="+sample, func(b *testing.B) {
			up := staticUpstream(b)
			cfg := allocConfig + "tracing: {otlp: {endpoint: \"" + sink.URL + "/v1/traces\"}, sample: " + sample + "}\n"
			srv, err := New(mustParse(b, sub(cfg, "UP", up.URL)), "test.yaml", quietLog())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = srv.Shutdown(ctxTimeout(2e9)) })
			h := srv.Handler()
			rc := newDirectCtx(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				prepare(rc, "/users/42")
				h(rc)
			}
		})
	}
}
