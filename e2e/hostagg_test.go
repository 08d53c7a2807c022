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
	module := buildHeadersGuest(t)
	up := startEcho(t, "e1")
	lua := `{name: lua, config: {source: "function access() weir.request.set_header('Host', 'lua.example') end"}}`
	wasm := `{name: wasm, config: {module: "` + module + `", config: {request_headers: {":authority": "guest.example"}}}}`
	w := startWeir(t, strings.NewReplacer("UP", up, "LUA", lua, "WASM", wasm).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - {name: lua-target, paths: ["=/lua/target"], service: a, plugins: [LUA]}
  - {name: lua-preserve, paths: ["=/lua/preserve"], service: a, preserve_host: true, plugins: [LUA]}
  - {name: wasm-target, paths: ["=/wasm/target"], service: a, plugins: [WASM]}
  - {name: wasm-preserve, paths: ["=/wasm/preserve"], service: a, preserve_host: true, plugins: [WASM]}
  - {name: plain-target, paths: ["=/plain/target"], service: a}
  - {name: plain-preserve, paths: ["=/plain/preserve"], service: a, preserve_host: true}
`))
	for _, tc := range []struct{ path, want string }{
		{"/lua/target", "lua.example"},
		{"/lua/preserve", "lua.example"},
		{"/wasm/target", "guest.example"},
		{"/wasm/preserve", "guest.example"},
		{"/plain/target", up},
		{"/plain/preserve", "client.example"},
	} {
		code, _, body := send(t, w.Addr, "GET", tc.path, "client.example", nil)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", tc.path, code, body)
		}
		r := echoed(t, body)
		if r.Host != tc.want {
			t.Errorf("GET %s: the upstream got Host %q, want %q", tc.path, r.Host, tc.want)
		}
		if xfh := r.Headers["X-Forwarded-Host"]; xfh != "client.example" {
			t.Errorf("GET %s: X-Forwarded-Host %q, want the client's client.example", tc.path, xfh)
		}
	}
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
