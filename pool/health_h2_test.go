//lint:file-ignore SA1019 an h2c-only server needs x/net/http2's ServeConn

package pool

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestActiveHealthHTTP2: an h2c:// target that speaks only HTTP/2 (a gRPC
// server's kind) is probed over HTTP/2: up while its health path answers
// 200, down when it answers 503, and every probe is a new connection.
func TestActiveHealthHTTP2(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var status, probes, conns atomic.Int64
	status.Store(http.StatusOK)
	h2s := &http2.Server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && r.ProtoMajor == 2 && r.Header.Get("User-Agent") == "weir-health-check" {
			probes.Add(1)
		}
		w.WriteHeader(int(status.Load()))
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go h2s.ServeConn(c, &http2.ServeConnOpts{Handler: h})
		}
	}()
	r := NewRegistry()
	s := mustService(t, r, ServiceConfig{
		Name:    "active-h2",
		Targets: []TargetConfig{{URL: "h2c://" + ln.Addr().String(), Weight: 1}},
		Health:  HealthConfig{Active: fastActive()},
	})
	s.Start()
	eventually(t, 2*time.Second, "HTTP/2 probes", func() bool { return probes.Load() >= 2 })
	if !s.Status()[0].Healthy {
		t.Fatal("an HTTP/2 target answering 200 is unhealthy")
	}
	status.Store(http.StatusServiceUnavailable)
	eventually(t, 2*time.Second, "the target to go down", func() bool { return !s.Status()[0].Healthy })
	status.Store(http.StatusOK)
	eventually(t, 2*time.Second, "the target to come back", func() bool { return s.Status()[0].Healthy })
	if c, p := conns.Load(), probes.Load(); c < p {
		t.Errorf("%d probes on %d connections: each probe must dial", p, c)
	}
}
