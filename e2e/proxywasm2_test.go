package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestProxyWasmSDKSharedQueue: shared_queue's "receiver" (vm_id
// receiver, two instances) registers a queue at start; the "sender", a
// plugin of another route and VM ID, resolves it by VM ID and name and
// enqueues each request's x-item; proxy_on_queue_ready tells a receiver
// instance, which dequeues every item and counts it in its metric.
func TestProxyWasmSDKSharedQueue(t *testing.T) {
	module := buildSDKFilter(t, "shared_queue")
	up := startEcho(t, "e1")
	w := startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - {name: app, targets: [{url: "http://`+up+`"}]}
routes:
  - name: receiver
    paths: ["/recv"]
    service: app
    plugins:
      - name: wasm
        config: {module: `+module+`, timeout: 2s, vm_id: receiver, root_id: receiver, pool_size: 2}
  - name: sender
    paths: ["/send"]
    service: app
    plugins:
      - name: wasm
        config: {module: `+module+`, timeout: 2s, vm_id: sender, root_id: sender}
`)
	c := newClient(w.Addr)
	const n = 20
	for i := 0; i < n; i++ {
		if code, body, _ := get(t, c, "/send", map[string]string{"X-Item": fmt.Sprintf("item-%d", i)}); code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	metric := `weir_wasm_guest_queue_items_total{route="receiver"}`
	if !waitUntil(10*time.Second, 20*time.Millisecond, func() bool { return w.metric(metric) == n }) {
		t.Fatalf("%s = %v, want %d\n%s", metric, w.metric(metric), n, w.Logs())
	}
	l := w.Logs()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`dequeued: (item-\d+)\b`).FindAllStringSubmatch(l, -1) {
		seen[m[1]] = true
	}
	for i := 0; i < n; i++ {
		if !seen[fmt.Sprintf("item-%d", i)] {
			t.Fatalf("item-%d was not dequeued:\n%s", i, l)
		}
	}
	if got := strings.Count(l, "queue registered, id="); got != 2 {
		t.Fatalf("want both receiver instances to register the queue, got %d:\n%s", got, l)
	}
}

// TestProxyWasmSDKDispatchCallOnTick: dispatch_call_on_tick calls the
// service "httpbin" from proxy_on_tick, in the root context, with no
// request involved; each answer reaches its callback (status and body
// readable), which counts it.
func TestProxyWasmSDKDispatchCallOnTick(t *testing.T) {
	module := buildSDKFilter(t, "dispatch_call_on_tick")
	up := startEcho(t, "e1")
	bin := startEcho(t, "bin")
	w := startWeir(t, sdkRoute(up, bin, module, "          pool_size: 1\n"))
	metric := `weir_wasm_guest_tick_calls_total{route="sdk"}`
	if !waitUntil(10*time.Second, 20*time.Millisecond, func() bool { return w.metric(metric) >= 3 }) {
		t.Fatalf("%s = %v, want at least 3 answered calls from ticks\n%s", metric, w.metric(metric), w.Logs())
	}
	if m := regexp.MustCompile(`tick call answered: status 200, ([1-9]\d*) body bytes`).FindString(w.Logs()); m == "" {
		t.Fatalf("no answer with status 200 and a body in the guest's log:\n%s", w.Logs())
	}
	if strings.Contains(w.Logs(), "dispatch on tick") {
		t.Fatalf("a dispatch from a tick failed:\n%s", w.Logs())
	}
}

// TestProxyWasmSDKProperties: properties reads the route's metadata as
// the SDK's example does (NOT_FOUND: a Weir route has none, so it lets
// the request through, logging so) and the properties SDK filters read,
// which it copies into headers the test checks against what it knows of
// the request, the route and the connection.
func TestProxyWasmSDKProperties(t *testing.T) {
	module := buildSDKFilter(t, "properties")
	up := startEcho(t, "e1")
	w := startWeir(t, sdkRoute(up, "", module, "          root_id: props-root\n          vm_id: props-vm\n"))
	c := newClient(w.Addr)
	code, body, h := get(t, c, "/p/x?q=1", map[string]string{"X-Probe": "probe-value", "User-Agent": "props-agent"})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	props := map[string]string{}
	for k, v := range echoed(t, body).Headers {
		if n, ok := strings.CutPrefix(strings.ToLower(k), "x-prop-"); ok {
			props[n] = v
		}
	}
	src := props["source.address"]
	_, srcPort, _ := strings.Cut(src, ":")
	_, dstPort, _ := strings.Cut(w.Addr, ":")
	want := map[string]string{
		"plugin_root_id": "props-root", "plugin_vm_id": "props-vm",
		"route_name": "sdk", "cluster_name": "app", "xds.route_name": "sdk", "xds.cluster_name": "app",
		"request.path": "/p/x?q=1", "request.url_path": "/p/x", "request.method": "GET", "request.scheme": "http",
		"request.protocol": "HTTP/1.1", "request.query": "q=1", "request.useragent": "props-agent",
		"request.headers.x-probe": "probe-value", "destination.address": w.Addr, "destination.port": dstPort,
		"source.port": srcPort, "connection.tls_version": "", "request.size": "0", "mtls": "0",
	}
	for k, v := range want {
		if got, ok := props[k]; !ok || got != v {
			t.Errorf("%s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if !strings.HasPrefix(props["plugin_name"], "properties-") || !strings.HasPrefix(src, "127.0.0.1:") || props["request.host"] == "" || props["request.id"] == "" {
		t.Errorf("plugin_name %q, source.address %q, request.host %q, request.id %q", props["plugin_name"], src, props["request.host"], props["request.id"])
	}
	if got := string(h.Peek("X-Prop-Response.code")); got != "200" {
		t.Errorf("response.code = %q, want 200", got)
	}
	if got := string(h.Peek("X-Prop-Response.content-type")); got != string(h.ContentType()) {
		t.Errorf("response.headers.content-type = %q, want %q", got, h.ContentType())
	}
	if !strings.Contains(w.Logs(), "no auth header for route") {
		t.Errorf("route_metadata was not NOT_FOUND:\n%s", w.Logs())
	}
}

// TestProxyWasmSDKHttpBodyChunk: http_body_chunk reads the request body
// chunk by chunk and answers 403 on "pattern". A body the gateway
// buffers (up to 256 KiB) comes in one call with end_of_stream set, so
// the example works unchanged, even for a chunked upload that splits the
// pattern between two chunks; a larger body streams to the upstream and
// is not passed to the guest (the documented contract): it is forwarded
// whole and the guest gets no body call.
func TestProxyWasmSDKHttpBodyChunk(t *testing.T) {
	module := buildSDKFilter(t, "http_body_chunk")
	up := startBodyRecorder(t)
	w := startWeir(t, sdkRoute(strings.TrimPrefix(up.URL, "http://"), "", module, ""))
	resp, body := bodyExchange(t, w.Addr, bodyPost("/c", "text/plain", "there is a pattern inside"))
	if resp.StatusCode != 403 || body != `pattern "pattern" found in the body` || resp.Header.Get("Powered-By") != "proxy-wasm-go-sdk!!" {
		t.Fatalf("body with the pattern: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	chunked := "POST /c HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nxxpat\r\n6\r\nternyy\r\n0\r\n\r\n"
	if resp, body := bodyExchange(t, w.Addr, chunked); resp.StatusCode != 403 {
		t.Fatalf("chunked body with the pattern split across chunks: %d %q", resp.StatusCode, body)
	}
	if resp, body := bodyExchange(t, w.Addr, bodyPost("/c", "text/plain", "nothing to see")); resp.StatusCode != 200 {
		t.Fatalf("clean body: %d %q", resp.StatusCode, body)
	}
	if got, _ := up.last(t); string(got.Body) != "nothing to see" {
		t.Fatalf("upstream got %q", got.Body)
	}
	if !strings.Contains(w.Logs(), "body call: size 25, end_of_stream true") {
		t.Fatalf("the buffered body did not come whole with end_of_stream:\n%s", w.Logs())
	}
	large := strings.Repeat("a", 300<<10) + "pattern"
	if resp, body := bodyExchange(t, w.Addr, bodyPost("/c", "text/plain", large)); resp.StatusCode != 200 {
		t.Fatalf("streamed body: %d %q", resp.StatusCode, body)
	}
	if got, _ := up.last(t); len(got.Body) != len(large) || !strings.HasSuffix(string(got.Body), "pattern") {
		t.Fatalf("upstream got %d bytes of the streamed body, want %d", len(got.Body), len(large))
	}
	if n := strings.Count(w.Logs(), "body call:"); n != 3 {
		t.Fatalf("want 3 body calls (none for the streamed body), got %d:\n%s", n, w.Logs())
	}
}

// TestProxyWasmNetworkFilterRefused: a network (TCP) filter, one that
// exports the connection callbacks and no HTTP callback, is refused by
// `weir validate` with a message saying so, naming file and place.
func TestProxyWasmNetworkFilterRefused(t *testing.T) {
	module := buildSDKFilter(t, "tcp_only")
	file := filepath.Join(t.TempDir(), "weir.yaml")
	cfg := strings.NewReplacer("{{LISTEN}}", "127.0.0.1:0", "{{ADMIN}}", "127.0.0.1:0").Replace(sdkRoute("127.0.0.1:1", "", module, ""))
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := validateFile(t, file)
	want := "routes[0].plugins[0] (wasm): module: " + module + ": the module is a network (TCP) filter: it exports proxy_on_"
	if code == 0 || !strings.Contains(out, file) || !strings.Contains(out, want) || !strings.Contains(out, "Weir runs Proxy-Wasm HTTP filters only") {
		t.Fatalf("weir validate exited %d:\n%s\nwant an error containing %q", code, out, want)
	}
}

// TestWasmCompileCacheOnDisk: with server.wasm_cache_dir the machine
// code of a compiled module is written there, and a second gateway (a
// restart) reuses it: it writes nothing new.
func TestWasmCompileCacheOnDisk(t *testing.T) {
	// A small module (17 KB): a Go guest would take seconds of CPU to
	// compile cold, which a loaded machine stretches past the start-up
	// deadline.
	module, err := filepath.Abs("testdata/assemblyscript/add_header.wasm")
	if err != nil {
		t.Fatal(err)
	}
	up := startEcho(t, "e1")
	dir := filepath.Join(t.TempDir(), "wasm-cache")
	cfg := "server: {wasm_cache_dir: " + dir + "}\n" + sdkRoute(up, "", module, "          root_id: add_header\n          config: from-config\n")
	files := func() map[string]time.Time {
		out := map[string]time.Time{}
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					out[p] = fi.ModTime()
				}
			}
			return nil
		})
		return out
	}
	w := startWeir(t, cfg)
	if code, _, _ := get(t, newClient(w.Addr), "/x", nil); code != 200 {
		t.Fatalf("first gateway: %d", code)
	}
	first := files()
	if len(first) == 0 {
		t.Fatalf("nothing was cached in %s", dir)
	}
	w2 := startWeir(t, cfg)
	if code, _, _ := get(t, newClient(w2.Addr), "/x", nil); code != 200 {
		t.Fatalf("second gateway: %d", code)
	}
	second := files()
	if len(second) != len(first) {
		t.Fatalf("the restart compiled again: %d cached files, then %d", len(first), len(second))
	}
	for p, m := range first {
		if !second[p].Equal(m) {
			t.Fatalf("the restart rewrote %s", p)
		}
	}
}
