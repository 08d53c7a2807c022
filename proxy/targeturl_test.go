package proxy

import (
	"testing"
	"time"
)

// TestTransportFoundForEveryTargetSpelling: the request path finds a
// member's transport by the pool's name for it (service.transport), so a
// target written other than in its canonical form (default port, upper
// case, trailing slash, a long IPv6 form) must not leave a member without
// one: that member would answer every request 503.
func TestTransportFoundForEveryTargetSpelling(t *testing.T) {
	srv, err := New(mustParse(t, `
listen: "127.0.0.1:0"
services:
  - name: s
    targets:
      - url: "http://127.0.0.1:80"
      - url: "HTTP://LOCALHOST:9001/"
      - url: "http://[0:0:0:0:0:0:0:1]:9002"
      - url: "https://Example.COM/"
routes: [{name: r, paths: ["/"], service: s}]
`), "test.yaml", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(ctxTimeout(5 * time.Second)) })
	svc := srv.cur.Load().services["s"]
	members := svc.p.Members()
	if len(members) != 4 {
		t.Fatalf("%d members, want 4", len(members))
	}
	for _, m := range members {
		if svc.transport(m) == nil {
			t.Errorf("no transport for member %s (transports: %v)", m.URL(), svc.trans)
		}
	}
}
