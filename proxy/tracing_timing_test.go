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
			benchForward(b, benchServerConfig(b, allocConfig+"tracing: {otlp: {endpoint: \""+sink.URL+"/v1/traces\"}, sample: "+sample+"}\n"))
		})
	}
}
