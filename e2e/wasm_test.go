package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/wasmasm"
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

// TestWasmHandHeaderFilter: a hand-written Proxy-Wasm filter (no
// language runtime in the guest: internal/wasmasm.HeaderFilter, the
// bench's weir+wasm_header_hand row) runs on a route of the real binary.
// Its request header reaches the upstream, and its response header is on
// the wire once, after two requests on one keep-alive connection.
func TestWasmHandHeaderFilter(t *testing.T) {
	module := filepath.Join(t.TempDir(), "hand_headers.wasm")
	if err := os.WriteFile(module, wasmasm.HeaderFilter("X-Wasm", "yes", "X-Wasm-Filter", "headers"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "MODULE", module).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: hand
    paths: ["/"]
    service: a
    plugins:
      - name: wasm
        config: {module: MODULE}
`))
	conn, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for i := range 2 {
		if _, err := conn.Write([]byte("GET /hand HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(body)), `"x-wasm":"yes"`) {
			t.Fatalf("request %d: the upstream did not get X-Wasm: yes: %d %s", i, resp.StatusCode, body)
		}
		if got := resp.Header.Values("X-Wasm-Filter"); len(got) != 1 || got[0] != "headers" {
			t.Fatalf("request %d: X-Wasm-Filter on the wire = %q, want [headers]", i, got)
		}
	}
}
