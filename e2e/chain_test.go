package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestPluginChain: key_auth, rate_limit, request_transformer,
// response_transformer and cache on one route, through the real binary.
func TestPluginChain(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
consumers:
  - {name: alice, groups: [gold], credentials: {key_auth: [{key: "k-alice"}]}}
routes:
  - name: users
    paths: ["/users/{id}"]
    service: a
    plugins:
      - {name: key_auth, config: {hide_credentials: true}}
      - {name: rate_limit, config: {rate: 1000, per: 1s, burst: 1000, key: consumer}}
      - name: request_transformer
        config:
          add: {headers: {X-From: weir}, query: {v: "2"}}
          remove: {query: [token]}
          path: "/v2/users/{id}"
      - name: response_transformer
        config:
          set: {headers: {X-Served-By: weir}}
          remove: {headers: [X-Echo-Server]}
  - name: scripted
    paths: ["/scripted"]
    service: a
    plugins:
      - name: lua
        config:
          source: |
            function access()
              if weir.request.get_header("X-Block") == "1" then
                return weir.response.exit(403, {error = "blocked by script"})
              end
              weir.request.set_header("X-Lua", "seen")
            end
  - name: cached
    paths: ["/cached"]
    service: a
    plugins:
      - {name: cache, config: {store: memory, default_ttl: 60s}}
`, "UP", up))
	c := newClient(w.Addr)
	code, body, h := get(t, c, "/users/7?token=secret&keep=1", map[string]string{"X-API-Key": "k-alice"})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var r struct {
		Path    string            `json:"path"`
		Query   string            `json:"query"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.Path != "/v2/users/7" || strings.Contains(r.Query, "token") || !strings.Contains(r.Query, "keep=1") || !strings.Contains(r.Query, "v=2") {
		t.Fatalf("upstream saw %s?%s", r.Path, r.Query)
	}
	if r.Headers["X-From"] != "weir" || r.Headers["X-Consumer-Name"] != "alice" || r.Headers["X-Api-Key"] != "" {
		t.Fatalf("upstream headers %v", r.Headers)
	}
	if string(h.Peek("X-Served-By")) != "weir" || len(h.Peek("X-Echo-Server")) != 0 {
		t.Fatalf("response headers: %s", h.Header())
	}
	if len(h.Peek("RateLimit-Remaining")) == 0 {
		t.Fatalf("no RateLimit headers: %s", h.Header())
	}
	// Lua: a header added, or the request answered by the script.
	code, body, _ = get(t, c, "/scripted", nil)
	if code != 200 || !strings.Contains(body, `"X-Lua":"seen"`) {
		t.Fatalf("lua route: %d %s", code, body)
	}
	code, body, _ = get(t, c, "/scripted", map[string]string{"X-Block": "1"})
	if code != 403 || !strings.Contains(body, "blocked by script") {
		t.Fatalf("lua exit: %d %s", code, body)
	}
	// Cache: MISS then HIT.
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	statuses := []string{}
	for i := 0; i < 2; i++ {
		req.SetRequestURI("http://" + w.Addr + "/cached/static")
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, string(resp.Header.Peek("X-Cache-Status")))
	}
	if statuses[0] != "MISS" || statuses[1] != "HIT" {
		t.Fatalf("cache statuses %v", statuses)
	}
}
