package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/echo"
)

// hostClient sends requests with a Host of the test's choosing (the
// fasthttp client of the harness writes the dialled address).
var hostClient = &http.Client{Timeout: 10 * time.Second}

// send makes one request to the gateway at addr with the given Host and
// returns the status, the response header and the body.
func send(t *testing.T, addr, method, path, host string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hostClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// echoed decodes what the echo upstream says it received.
func echoed(t *testing.T, body string) echo.Reply {
	t.Helper()
	var r echo.Reply
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("not an echo reply: %v: %s", err, body)
	}
	return r
}

// buildHeadersGuest compiles the example Proxy-Wasm guest
// (plugins/wasm/examples/headers) and returns the module's path.
func buildHeadersGuest(t *testing.T) string {
	t.Helper()
	module := filepath.Join(t.TempDir(), "headers.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", module, ".")
	build.Dir = "../plugins/wasm/examples/headers"
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example guest: %v\n%s", err, out)
	}
	return module
}

// TestPluginHostGoesUpstream: a Host a plugin sets (a lua script's
// set_header("Host"), a wasm guest's :authority) is the Host the upstream
// gets, with preserve_host false and true; X-Forwarded-Host stays the
// client's. Without a plugin, preserve_host decides as before.
func TestPluginHostGoesUpstream(t *testing.T) {
	up := startEcho(t, "e1")
	check := func(w *weir, path, want string) {
		t.Helper()
		code, _, body := send(t, w.Addr, "GET", path, "client.example", nil)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		r := echoed(t, body)
		if r.Host != want {
			t.Errorf("GET %s: the upstream got Host %q, want %q", path, r.Host, want)
		}
		if xfh := r.Headers["X-Forwarded-Host"]; xfh != "client.example" {
			t.Errorf("GET %s: X-Forwarded-Host %q, want the client's client.example", path, xfh)
		}
	}

	lua := `{name: lua, config: {source: "function access() weir.request.set_header('Host', 'lua.example') end"}}`
	w := startWeir(t, strings.NewReplacer("UP", up, "LUA", lua).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - {name: lua-target, paths: ["=/lua/target"], service: a, plugins: [LUA]}
  - {name: lua-preserve, paths: ["=/lua/preserve"], service: a, preserve_host: true, plugins: [LUA]}
  - {name: plain-target, paths: ["=/plain/target"], service: a}
  - {name: plain-preserve, paths: ["=/plain/preserve"], service: a, preserve_host: true}
`))
	check(w, "/lua/target", "lua.example")
	check(w, "/lua/preserve", "lua.example")
	check(w, "/plain/target", up)
	check(w, "/plain/preserve", "client.example")

	// The guest is a global plugin: one instance for both routes (a Go
	// guest is slow to compile and start).
	module := buildHeadersGuest(t)
	w = startWeir(t, strings.NewReplacer("UP", up, "MODULE", module).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
plugins:
  - {name: wasm, config: {module: "MODULE", config: {request_headers: {":authority": "guest.example"}}}}
routes:
  - {name: wasm-target, paths: ["=/wasm/target"], service: a}
  - {name: wasm-preserve, paths: ["=/wasm/preserve"], service: a, preserve_host: true}
`))
	check(w, "/wasm/target", "guest.example")
	check(w, "/wasm/preserve", "guest.example")
}

// TestCacheInvalidatesWithTargetHost: with the default preserve_host:
// false the upstream gets the target's Host, yet a successful POST
// invalidates what a GET of the same URL stored (RFC 9111 §4.4): the key
// is the client's URL both times.
func TestCacheInvalidatesWithTargetHost(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: cached
    paths: ["/items"]
    service: a
    plugins:
      - {name: cache, config: {store: memory, default_ttl: 60s}}
`, "UP", up))
	step := func(method, want string) {
		t.Helper()
		code, h, body := send(t, w.Addr, method, "/items/1", "shop.example", nil)
		if code != 200 {
			t.Fatalf("%s: %d %s", method, code, body)
		}
		if want != "" && h.Get("X-Cache-Status") != want {
			t.Fatalf("%s: X-Cache-Status %q, want %s", method, h.Get("X-Cache-Status"), want)
		}
	}
	step("GET", "MISS")
	step("GET", "HIT")
	step("POST", "")
	step("GET", "MISS")
	step("GET", "HIT")
}

// aggregated decodes an aggregate answer whose legs are echo replies (or
// null).
func aggregated(t *testing.T, body string) map[string]*echo.Reply {
	t.Helper()
	var m map[string]*echo.Reply
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not an aggregate of echo replies: %v: %s", err, body)
	}
	return m
}

// TestAggregateLegTimeout: services[].timeout bounds each leg; a leg
// slower than its service's timeout fails within that timeout (a required
// one with 504, an optional one as null, named in X-Weir-Aggregate-Missing)
// even though the aggregate's own timeout is longer.
func TestAggregateLegTimeout(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - {name: fast, targets: [{url: "http://UP"}]}
  - {name: slow, timeout: 300ms, targets: [{url: "http://UP"}]}
routes:
  - name: required
    paths: ["/required/{id}"]
    aggregate:
      timeout: 5s
      backends:
        - {service: fast, path: "/users/{id}", key: user}
        - {service: slow, path: "/sleep/2500", key: slow}
  - name: optional
    paths: ["/optional/{id}"]
    aggregate:
      timeout: 5s
      backends:
        - {service: fast, path: "/users/{id}", key: user}
        - {service: slow, path: "/sleep/2500", key: slow, optional: true}
  - name: quick
    paths: ["/quick/{id}"]
    aggregate:
      timeout: 5s
      backends:
        - {service: slow, path: "/sleep/50", key: slow}
`, "UP", up))
	t0 := time.Now()
	code, _, body := send(t, w.Addr, "GET", "/required/7", "client.example", nil)
	if took := time.Since(t0); code != 504 || !strings.Contains(body, "aggregate backend slow timed out") || took > 1500*time.Millisecond {
		t.Fatalf("required slow leg: %d after %v, want 504 within the service's 300ms: %s", code, took, body)
	}
	t0 = time.Now()
	code, h, body := send(t, w.Addr, "GET", "/optional/7", "client.example", nil)
	if took := time.Since(t0); code != 200 || took > 1500*time.Millisecond {
		t.Fatalf("optional slow leg: %d after %v, want 200 within the service's 300ms: %s", code, took, body)
	}
	m := aggregated(t, body)
	if m["slow"] != nil || m["user"] == nil || m["user"].Path != "/users/7" {
		t.Fatalf("optional slow leg: want user and slow null, got %s", body)
	}
	if got := h.Get("X-Weir-Aggregate-Missing"); got != "slow" {
		t.Fatalf("X-Weir-Aggregate-Missing %q, want slow", got)
	}
	// A leg within its service's timeout is not cut short.
	if code, _, body := send(t, w.Addr, "GET", "/quick/7", "client.example", nil); code != 200 || aggregated(t, body)["slow"] == nil {
		t.Fatalf("leg within its timeout: %d %s", code, body)
	}
}

// TestAggregateLegForwarding: each leg carries X-Forwarded-For, -Proto and
// -Host (the client's host) like a forwarded request, and the client's
// traceparent, or one the gateway starts, shared by the request's legs.
func TestAggregateLegForwarding(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: profile
    paths: ["/profile/{id}"]
    aggregate:
      backends:
        - {service: a, path: "/users/{id}", key: user}
        - {service: a, path: "/orders?user={id}", key: orders}
`, "UP", up))
	code, _, body := send(t, w.Addr, "GET", "/profile/7", "client.example", nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	m := aggregated(t, body)
	user, orders := m["user"], m["orders"]
	if user == nil || orders == nil {
		t.Fatalf("missing legs: %s", body)
	}
	for key, leg := range m {
		for name, want := range map[string]string{
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "client.example",
		} {
			if got := leg.Headers[name]; got != want {
				t.Errorf("leg %s: %s %q, want %q", key, name, got, want)
			}
		}
		tp := leg.Headers["Traceparent"]
		if len(tp) != 55 || !strings.HasPrefix(tp, "00-") || tp[35] != '-' || !strings.HasSuffix(tp, "-01") {
			t.Errorf("leg %s: traceparent %q, want one the gateway started", key, tp)
		}
	}
	if a, b := user.Headers["Traceparent"], orders.Headers["Traceparent"]; a != b {
		t.Errorf("the legs of one request carry different traces: %q and %q", a, b)
	}

	// The client's traceparent, and its X-Forwarded-For chain, go on.
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	code, _, body = send(t, w.Addr, "GET", "/profile/8", "client.example",
		map[string]string{"Traceparent": tp, "X-Forwarded-For": "203.0.113.9"})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	for key, leg := range aggregated(t, body) {
		if leg.Headers["Traceparent"] != tp {
			t.Errorf("leg %s: traceparent %q, want the client's %q", key, leg.Headers["Traceparent"], tp)
		}
		if got := leg.Headers["X-Forwarded-For"]; got != "203.0.113.9, 127.0.0.1" {
			t.Errorf("leg %s: X-Forwarded-For %q, want the client's chain and the peer", key, got)
		}
	}
}

// TestAggregateNonJSONLeg: a leg that answers something other than JSON is
// flagged like a failed leg: an optional one is null and named in
// X-Weir-Aggregate-Missing, a required one fails the answer with 502.
func TestAggregateNonJSONLeg(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: optional
    paths: ["/optional/{id}"]
    aggregate:
      backends:
        - {service: a, path: "/users/{id}", key: user}
        - {service: a, path: "/static", key: text, optional: true}
  - name: required
    paths: ["/required/{id}"]
    aggregate:
      backends:
        - {service: a, path: "/users/{id}", key: user}
        - {service: a, path: "/static", key: text}
`, "UP", up))
	code, h, body := send(t, w.Addr, "GET", "/optional/7", "client.example", nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	if string(m["text"]) != "null" || len(m["user"]) == 0 {
		t.Fatalf("want user and text null, got %s", body)
	}
	if got := h.Get("X-Weir-Aggregate-Missing"); got != "text" {
		t.Fatalf("X-Weir-Aggregate-Missing %q, want text", got)
	}
	code, _, body = send(t, w.Addr, "GET", "/required/7", "client.example", nil)
	if code != 502 || !strings.Contains(body, "aggregate backend text did not answer JSON") {
		t.Fatalf("required non-JSON leg: %d %s, want 502", code, body)
	}
}

// TestValidateAggregateUnknownParam: an aggregate backend path naming a
// {param} the route does not capture is a config error (it would render
// empty on every request): weir validate names the place and exits 1.
func TestValidateAggregateUnknownParam(t *testing.T) {
	file := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(file, []byte(`
listen: "127.0.0.1:0"
services: [{name: users, targets: [{url: "http://127.0.0.1:9"}]}]
routes:
  - name: profile
    paths: ["/profile/{id}"]
    aggregate:
      backends:
        - {service: users, path: "/users/{id}", key: user}
        - {service: users, path: "/users/{uid}/friends", key: friends}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := validateFile(t, file)
	if code != 1 {
		t.Fatalf("want exit 1, got %d\n%s", code, out)
	}
	want := file + `: routes[0].aggregate.backends[1].path: {uid} is not a parameter of the route (it has {id}): use one of those or add {uid} to its paths`
	if strings.TrimSpace(out) != want {
		t.Fatalf("validate said:\n%s\nwant:\n%s", out, want)
	}
}
