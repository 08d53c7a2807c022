package e2e

import (
	"strings"
	"testing"
)

// TestWasmPlugin: the example Proxy-Wasm guest (plugins/wasm/examples/
// headers), compiled with the standard Go toolchain, runs on a route of
// the real binary.
func TestWasmPlugin(t *testing.T) {
	module := buildHeadersGuest(t)
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "MODULE", module).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: wasm
    paths: ["/"]
    service: a
    plugins:
      - name: wasm
        config:
          module: MODULE
          config: {request_headers: {X-Wasm-Added: "yes"}, response_headers: {X-Wasm-Filter: headers}, block_header: X-Block}
`))
	c := newClient(w.Addr)
	code, body, h := get(t, c, "/hello", nil)
	if code != 200 || !strings.Contains(strings.ToLower(body), `"x-wasm-added":"yes"`) {
		t.Fatalf("guest did not add its request header: %d %s", code, body)
	}
	if string(h.Peek("X-Wasm-Filter")) != "headers" {
		t.Fatalf("guest did not set its response header: %s", h.Header())
	}
	if code, _, _ := get(t, c, "/hello", map[string]string{"X-Block": "1"}); code != 403 {
		t.Fatalf("guest's local response: %d, want 403", code)
	}
}
