package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestTargetURLNotInNormalForm: a target written other than in its
// canonical form (upper-case scheme, an IPv6 literal not in its shortest
// form, a trailing slash) is one target under one name: requests reach
// it, its metrics carry the canonical URL GET /config shows, and a reload
// that spells it the canonical way keeps its pooled connection.
func TestTargetURLNotInNormalForm(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no IPv6 loopback: %v", err)
		}
		t.Skipf("no IPv6 loopback: %v", err)
	}
	// The upstream answers with the gateway's end of the connection: the
	// same answer twice means one pooled connection served both.
	srv := &fasthttp.Server{Handler: func(rc *fasthttp.RequestCtx) { rc.WriteString(rc.RemoteAddr().String()) }}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	port := ln.Addr().(*net.TCPAddr).Port
	canon := fmt.Sprintf("http://[::1]:%d", port)
	const cfg = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: v6
    targets: [{url: "%s"}]
    health_check: {passive: {}}
routes:
  - {name: r, paths: ["/"], service: v6}
`
	w := startWeir(t, fmt.Sprintf(cfg, fmt.Sprintf("HTTP://[0:0:0:0:0:0:0:1]:%d/", port)))
	c := newClient(w.Addr)
	code, first, _ := get(t, c, "/a", nil)
	if code != 200 {
		t.Fatalf("through the target: %d %q\n%s", code, first, w.Logs())
	}
	if v := w.metric(`weir_upstream_target_healthy{service="v6",target="` + canon + `"}`); v != 1 {
		t.Errorf("weir_upstream_target_healthy for %s is %v, want 1 (the canonical URL as the label)", canon, v)
	}
	if _, _, raw := adminRequest(t, w, "GET", "/config", "", nil); !strings.Contains(string(raw), `"`+canon+`"`) {
		t.Errorf("GET /config does not show the target as %s: %s", canon, raw)
	}

	v := w.configVersion()
	w.write(fmt.Sprintf(cfg, canon) + "  - {name: r2, paths: [\"/two\"], service: v6}\n")
	w.waitVersion(v + 1)
	code, second, _ := get(t, c, "/a", nil)
	if code != 200 {
		t.Fatalf("after the reload: %d %q\n%s", code, second, w.Logs())
	}
	if second != first {
		t.Errorf("the reload that spelled the target %s opened a new connection (%s, before %s): the pooled one was not kept", canon, second, first)
	}
}
