package cache

import (
	"net/http"
	"testing"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// TestInvalidationBehindTheRealServer runs the cache behind the real proxy
// server (plugintest.Serve: proxy.New's settings and handler, the default
// preserve_host: false, so the upstream gets the target's Host). A
// successful POST invalidates what a GET of the same URL stored (RFC 9111
// §4.4): lookup and invalidation compute the key from the client's host,
// not from the Host field the proxy rewrote for the upstream. The
// hand-built contexts of the other tests never rewrite it, which is how a
// POST that left the stored GET in place went unnoticed there.
func TestInvalidationBehindTheRealServer(t *testing.T) {
	const route = "cache-behind-the-server"
	f := plugintest.New[*Filter](t, New, &sdk.Build{Route: route}, `{"store": "memory", "default_ttl": "60s"}`)
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	g := plugintest.Serve(t, plugintest.Route{Name: route}, f)
	g.Upstream(func(r *plugintest.Received, w http.ResponseWriter) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte(r.Method + " " + r.URI))
	})
	for i, step := range []struct{ method, want string }{
		{"GET", "MISS"}, {"GET", "HIT"}, {"POST", ""}, {"GET", "MISS"}, {"GET", "HIT"},
	} {
		a := g.Do(t, plugintest.Send{Method: step.method, URI: "/items/1"})
		if a.Status != 200 {
			t.Fatalf("step %d %s: %d %s", i, step.method, a.Status, a.Body)
		}
		if step.want == "" {
			continue
		}
		if got := a.Header.Get("X-Cache-Status"); got != step.want {
			t.Fatalf("step %d %s: X-Cache-Status %q, want %s", i, step.method, got, step.want)
		}
		if (a.Upstream != nil) != (step.want == "MISS") {
			t.Fatalf("step %d %s (%s): the upstream asked: %v", i, step.method, step.want, a.Upstream != nil)
		}
	}
}
