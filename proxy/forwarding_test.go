package proxy

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestForwardingFieldsOncePerRequest: the fields the gateway sets reach
// the upstream exactly once each, whether the client sent none, forged
// ones (any case, empty values, an invalid traceparent) or named them in
// Connection; the client's other fields are untouched.
func TestForwardingFieldsOncePerRequest(t *testing.T) {
	up := startUpstream(t, func(rc *fasthttp.RequestCtx) {
		for k, v := range rc.Request.Header.All() {
			rc.Response.AppendBodyString(string(k) + ": " + string(v) + "\n")
		}
	})
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
services:
  - name: s
    targets: [{url: "UP"}]
routes:
  - name: r
    paths: ["/"]
    service: s
`, "UP", up.URL))
	fields := func(body string) map[string][]string {
		m := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			k, v, _ := strings.Cut(line, ": ")
			k = strings.ToLower(k)
			m[k] = append(m[k], v)
		}
		return m
	}
	cases := []struct {
		name string
		set  func(h *fasthttp.RequestHeader)
		xff  string // prefix (the in-memory listener says the client is 0.0.0.0)
	}{
		{"none", func(h *fasthttp.RequestHeader) {}, "0.0.0.0"},
		{"forged", func(h *fasthttp.RequestHeader) {
			h.DisableNormalizing()
			h.Set("x-forwarded-proto", "https")
			h.Set("X-FORWARDED-HOST", "evil.example")
			h.Set("traceparent", "garbage")
			h.Set("X-Forwarded-For", "203.0.113.9")
			h.Set("X-Other", "kept")
		}, "203.0.113.9, 0.0.0.0"},
		{"empty", func(h *fasthttp.RequestHeader) {
			h.Set("X-Forwarded-Proto", "")
			h.Set("X-Forwarded-Host", "")
			h.Set("Traceparent", "")
		}, "0.0.0.0"},
		{"named in Connection", func(h *fasthttp.RequestHeader) {
			h.Set("Connection", "X-Forwarded-Proto, Traceparent")
			h.Set("X-Forwarded-Proto", "https")
			h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		}, "0.0.0.0"},
	}
	for _, tc := range cases {
		_, body := g.do("GET", "/x", func(r *fasthttp.Request) {
			r.UseHostHeader = true
			r.Header.SetHost("shop.example")
			tc.set(&r.Header)
		})
		f := fields(body)
		for _, k := range []string{"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "traceparent", "x-request-id"} {
			if len(f[k]) != 1 {
				t.Errorf("%s: %s sent %d times: %q\n%s", tc.name, k, len(f[k]), f[k], body)
			}
		}
		if len(f["x-forwarded-for"]) == 1 && !strings.HasPrefix(f["x-forwarded-for"][0], tc.xff) {
			t.Errorf("%s: X-Forwarded-For %q, want %q…", tc.name, f["x-forwarded-for"][0], tc.xff)
		}
		if got := f["x-forwarded-proto"]; len(got) != 1 || got[0] != "http" {
			t.Errorf("%s: X-Forwarded-Proto %q", tc.name, got)
		}
		if got := f["x-forwarded-host"]; len(got) != 1 || got[0] != "shop.example" {
			t.Errorf("%s: X-Forwarded-Host %q", tc.name, got)
		}
		if got := f["traceparent"]; len(got) != 1 || !validTraceparent([]byte(got[0])) ||
			(tc.name == "named in Connection" && strings.Contains(got[0], "0af7651916cd43dd8448eb211c80319c")) {
			t.Errorf("%s: traceparent %q", tc.name, got)
		}
		if tc.name == "forged" && (len(f["x-other"]) != 1 || f["x-other"][0] != "kept") {
			t.Errorf("forged: X-Other %q", f["x-other"])
		}
	}
}
