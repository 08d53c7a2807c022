package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The filters under testdata/proxywasm are written against the Proxy-Wasm
// Go SDK (github.com/proxy-wasm/proxy-wasm-go-sdk, at the exact version in
// their go.mod), one per example of the SDK, doing what that example
// does: the examples themselves are not in the SDK's module zip, so each
// is rewritten here from its README and source. They are built with the
// standard Go toolchain (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared),
// as a plugin author would, and run on the real binary.

var proxyWasmBuilds sync.Mutex

// buildSDKFilter compiles testdata/proxywasm/<name> and returns the
// module's path. The module is cached under the user cache directory by
// the hash of the Go version, go.mod, go.sum and the filter's source, so
// only the first run after a change pays for the build (tens of seconds
// on a loaded machine).
func buildSDKFilter(t *testing.T, name string) string {
	t.Helper()
	return buildGoWasm(t, "testdata/proxywasm", name, "")
}

// buildGoWasm builds the package name (a folder, or "." for the module's
// root) of the Go module in dir with the build tags tags, cached as
// buildSDKFilter says, and returns the module's path.
func buildGoWasm(t *testing.T, dir, name, tags string) string {
	t.Helper()
	proxyWasmBuilds.Lock()
	defer proxyWasmBuilds.Unlock()
	root, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version())
	if tags != "" {
		fmt.Fprintln(h, "tags", tags)
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	srcs, _ := filepath.Glob(filepath.Join(root, name, "*.go"))
	if len(srcs) == 0 {
		t.Fatalf("no filter source in %s", filepath.Join(root, name))
	}
	for _, f := range srcs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	cacheDir := filepath.Join(cache, "weir-e2e", "proxywasm")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	base := name
	if name == "." {
		base = filepath.Base(root)
	}
	out := filepath.Join(cacheDir, base+"-"+hex.EncodeToString(h.Sum(nil))[:16]+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	tmp := out + fmt.Sprintf(".%d.tmp", os.Getpid())
	build := exec.Command("go", "build", "-tags="+tags, "-buildmode=c-shared", "-trimpath", "-o", tmp, "./"+name)
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("building the Go filter %s in %s: %v\n%s", name, dir, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sdkRoute is a config with services "app" (upstream app) and "httpbin"
// (upstream bin, may be ""), and one route through the wasm plugin with
// the given plugin config lines (indented under config:).
func sdkRoute(app, bin, module, extra string) string {
	svcs := `  - {name: app, targets: [{url: "http://` + app + `"}]}` + "\n"
	if bin != "" {
		svcs += `  - {name: httpbin, timeout: 5s, targets: [{url: "http://` + bin + `"}]}` + "\n"
	}
	return `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
` + svcs + `routes:
  - name: sdk
    paths: ["/"]
    service: app
    plugins:
      - name: wasm
        config:
          module: ` + module + `
          timeout: 2s
` + extra
}

// TestProxyWasmSDKHttpHeaders: http_headers replaces the request header
// "test" with "best", adds its fixed and its configured response header,
// logs the headers it saw and each finished stream.
func TestProxyWasmSDKHttpHeaders(t *testing.T) {
	module := buildSDKFilter(t, "http_headers")
	up := startEcho(t, "e1")
	w := startWeir(t, sdkRoute(up, "", module, `          config: {header: x-from-config, value: yes}
`))
	c := newClient(w.Addr)
	code, body, h := get(t, c, "/x", map[string]string{"Test": "original"})
	if code != 200 || !strings.Contains(body, `"Test":"best"`) {
		t.Fatalf("the upstream did not get test: best: %d %s", code, body)
	}
	if got := string(h.Peek("X-Proxy-Wasm-Go-Sdk-Example")); got != "http_headers" {
		t.Fatalf("x-proxy-wasm-go-sdk-example = %q: %s", got, h.Header())
	}
	if got := string(h.Peek("X-From-Config")); got != "yes" {
		t.Fatalf("the configured response header = %q: %s", got, h.Header())
	}
	if !waitUntil(5*time.Second, 20*time.Millisecond, func() bool {
		l := w.Logs()
		return strings.Contains(l, "request header --> test: best") && strings.Contains(l, "response header <-- x-from-config: yes") && strings.Contains(l, " finished")
	}) {
		t.Fatalf("the guest's log lines are missing:\n%s", w.Logs())
	}
}

// fnvEven reports whether the FNV-1a 32 hash of s is even, the test
// http_auth_random applies to the callout's answer.
func fnvEven(s string) bool {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()%2 == 0
}

// authAnswers returns two bodies: one http_auth_random grants, one it
// refuses.
func authAnswers() (grant, deny string) {
	for i := 0; grant == "" || deny == ""; i++ {
		s := fmt.Sprintf(`{"uuid": "%08d"}`, i)
		if fnvEven(s) {
			grant = s
		} else {
			deny = s
		}
	}
	return grant, deny
}

// TestProxyWasmSDKHttpAuthRandom: http_auth_random pauses each request,
// calls the service "httpbin" with the request's headers, and on the
// answer resumes the request (even hash of the body) or answers 403
// "access forbidden" (odd). The callout goes through the service's
// balancer to a real upstream; the answer's headers and body reach the
// guest.
func TestProxyWasmSDKHttpAuthRandom(t *testing.T) {
	module := buildSDKFilter(t, "http_auth_random")
	grant, deny := authAnswers()
	var calls atomic.Int32
	var probe atomic.Value
	bin := serveFast(t, func(ctx *fasthttp.RequestCtx) {
		calls.Add(1)
		probe.Store(string(ctx.Request.Header.Peek("X-Probe")))
		ctx.Response.Header.Set("X-Bin", "here")
		if strings.HasPrefix(string(ctx.Path()), "/deny") {
			ctx.SetBodyString(deny)
		} else {
			ctx.SetBodyString(grant)
		}
	})
	up := startEcho(t, "e1")
	w := startWeir(t, sdkRoute(up, bin, module, ""))
	c := newClient(w.Addr)
	code, body, _ := get(t, c, "/grant", map[string]string{"X-Probe": "p1"})
	if code != 200 || !strings.Contains(body, `"X-Probe":"p1"`) {
		t.Fatalf("a granted request did not reach the upstream: %d %s", code, body)
	}
	if calls.Load() != 1 || probe.Load() != "p1" {
		t.Fatalf("httpbin saw %d calls, X-Probe %v; want 1 carrying the request's headers", calls.Load(), probe.Load())
	}
	code, body, h := get(t, c, "/deny", nil)
	if code != 403 || body != "access forbidden" || string(h.Peek("Powered-By")) != "proxy-wasm-go-sdk!!" {
		t.Fatalf("a refused request: %d %q powered-by=%q, want 403 access forbidden", code, body, h.Peek("Powered-By"))
	}
	if !waitUntil(5*time.Second, 20*time.Millisecond, func() bool {
		l := w.Logs()
		return strings.Contains(l, "response header from httpbin: x-bin: here") && strings.Contains(l, "access granted")
	}) {
		t.Fatalf("the guest did not log the callout's answer headers:\n%s", w.Logs())
	}

	// The service is looked up when the guest calls, in the running
	// config: without "httpbin" the call is refused (BAD_ARGUMENT, as
	// Envoy answers for an unknown cluster) and this guest lets the
	// request through.
	w.write(sdkRoute(up, "", module, ""))
	w.waitVersion(2)
	if code, _, _ := get(t, c, "/deny", nil); code != 200 {
		t.Fatalf("with no httpbin service: %d, want 200 (the guest continues when its call is refused)", code)
	}
	if !waitUntil(5*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(w.Logs(), "dispatch httpcall failed") }) {
		t.Fatalf("the guest did not log the refused call:\n%s", w.Logs())
	}
	// A call that fails (nothing listens) is still delivered, with no
	// headers and no body, as Envoy does: this guest finds no body and
	// resumes the request.
	w.write(sdkRoute(up, freeAddr(t), module, ""))
	w.waitVersion(3)
	if code, _, _ := get(t, c, "/deny", nil); code != 200 {
		t.Fatalf("with httpbin down: %d, want 200 (the guest resumes when the answer has no body)", code)
	}
	if l := w.Logs(); !strings.Contains(l, "wasm HTTP call failed") || !strings.Contains(l, "failed to get response body") {
		t.Fatalf("the failed call was not logged:\n%s", w.Logs())
	}
}

// TestProxyWasmSDKMultipleDispatches: multiple_dispatches pauses the
// response, makes 10 calls to "httpbin", and resumes the response with
// "total-dispatched: 10" once all have answered.
func TestProxyWasmSDKMultipleDispatches(t *testing.T) {
	module := buildSDKFilter(t, "multiple_dispatches")
	var calls atomic.Int32
	bin := serveFast(t, func(ctx *fasthttp.RequestCtx) {
		calls.Add(1)
		ctx.SetBodyString("ok")
	})
	up := startEcho(t, "e1")
	w := startWeir(t, sdkRoute(up, bin, module, ""))
	c := newClient(w.Addr)
	for i := 1; i <= 2; i++ {
		code, _, h := get(t, c, "/x", nil)
		if code != 200 || string(h.Peek("Total-Dispatched")) != "10" {
			t.Fatalf("response %d: %d total-dispatched=%q, want 200 and 10", i, code, h.Peek("Total-Dispatched"))
		}
		if n := calls.Load(); n != int32(10*i) {
			t.Fatalf("httpbin got %d calls after %d responses, want %d", n, i, 10*i)
		}
	}
	if !strings.Contains(w.Logs(), "response resumed after processed 10 dispatched request") {
		t.Fatalf("the guest did not log the resume:\n%s", w.Logs())
	}
}

// TestProxyWasmSDKHttpBody: http_body refuses a request without
// Content-Length (400), appends to, prepends to or replaces the request
// body, or the response body with buffer-replace-at: response; with the
// configuration "echo" it answers each request with its own body.
func TestProxyWasmSDKHttpBody(t *testing.T) {
	module := buildSDKFilter(t, "http_body")
	up := startBodyRecorder(t)
	w := startWeir(t, sdkRoute(strings.TrimPrefix(up.URL, "http://"), "", module, ""))
	resp, body := bodyExchange(t, w.Addr, "GET /b HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 400 || body != "content must be provided" {
		t.Fatalf("no body: %d %q, want 400", resp.StatusCode, body)
	}
	for op, want := range map[string]string{
		"append":  "hello[this is appended body]",
		"prepend": "[this is prepended body]hello",
		"":        "[this is replaced body]",
	} {
		raw := "POST /b HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nBuffer-Operation: " + op + "\r\nConnection: close\r\n\r\nhello"
		if resp, body := bodyExchange(t, w.Addr, raw); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", op, resp.StatusCode, body)
		}
		got, _ := up.last(t)
		if string(got.Body) != want || got.ContentLength != int64(len(want)) {
			t.Fatalf("%s: upstream got %q (Content-Length %d), want %q", op, got.Body, got.ContentLength, want)
		}
	}
	raw := "POST /b HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nBuffer-Operation: prepend\r\nBuffer-Replace-At: response\r\nConnection: close\r\n\r\nhello"
	resp, body = bodyExchange(t, w.Addr, raw)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "[this is prepended body]") || len(body) <= len("[this is prepended body]") {
		t.Fatalf("response body: %d %q, want the upstream's body prepended", resp.StatusCode, body)
	}

	w.write(sdkRoute(strings.TrimPrefix(up.URL, "http://"), "", module, "          config: echo\n"))
	w.waitVersion(2)
	resp, body = bodyExchange(t, w.Addr, bodyPost("/e", "text/plain", "say it back"))
	if resp.StatusCode != 200 || body != "say it back" {
		t.Fatalf("echo: %d %q", resp.StatusCode, body)
	}
}

// TestProxyWasmSDKJSONValidation: json_validation answers 403 to a
// request that is not application/json, or whose body is not JSON or
// lacks a configured required key, and lets the others through.
func TestProxyWasmSDKJSONValidation(t *testing.T) {
	module := buildSDKFilter(t, "json_validation")
	up := startBodyRecorder(t)
	w := startWeir(t, sdkRoute(strings.TrimPrefix(up.URL, "http://"), "", module, `          config: {requiredKeys: [id, token]}
`))
	cases := []struct {
		ctype, body string
		code        int
		answer      string
	}{
		{"text/plain", `{"id":1,"token":"t"}`, 403, "content-type must be provided"},
		{"application/json", `{"id":1}`, 403, "invalid payload"},
		{"application/json", `not json`, 403, "invalid payload"},
		{"application/json", `{"id":1,"token":"t"}`, 200, ""},
	}
	for _, tc := range cases {
		resp, body := bodyExchange(t, w.Addr, bodyPost("/j", tc.ctype, tc.body))
		if resp.StatusCode != tc.code || (tc.answer != "" && body != tc.answer) {
			t.Fatalf("%s %s: %d %q, want %d %q", tc.ctype, tc.body, resp.StatusCode, body, tc.code, tc.answer)
		}
	}
	if up.count() != 1 {
		t.Fatalf("the upstream got %d requests, want only the valid one", up.count())
	}
}

// TestProxyWasmSDKMetrics: metrics defines one counter per value of
// my-custom-header and counts the requests carrying it; Weir exports it
// as weir_wasm_guest_<sanitised name>_total{route}.
func TestProxyWasmSDKMetrics(t *testing.T) {
	module := buildSDKFilter(t, "metrics")
	up := startEcho(t, "e1")
	w := startWeir(t, sdkRoute(up, "", module, ""))
	c := newClient(w.Addr)
	for i := 0; i < 3; i++ {
		get(t, c, "/m", map[string]string{"My-Custom-Header": "foo"})
	}
	get(t, c, "/m", map[string]string{"My-Custom-Header": "bar"})
	name := `weir_wasm_guest_custom_header_value_counts_value_%s_reporter_wasmgosdk_total{route="sdk"}`
	if foo, bar := w.metric(fmt.Sprintf(name, "foo")), w.metric(fmt.Sprintf(name, "bar")); foo != 3 || bar != 1 {
		t.Fatalf("guest counters foo=%v bar=%v, want 3 and 1", foo, bar)
	}
}

// TestProxyWasmSDKSharedData: shared_data increments a counter in shared
// data with compare-and-swap on every request, across the instances of
// the pool.
func TestProxyWasmSDKSharedData(t *testing.T) {
	module := buildSDKFilter(t, "shared_data")
	up := startEcho(t, "e1")
	w := startWeir(t, sdkRoute(up, "", module, "          pool_size: 2\n"))
	c := newClient(w.Addr)
	for i := 0; i < 4; i++ {
		if code, _, _ := get(t, c, "/s", nil); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if !waitUntil(5*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(w.Logs(), "shared value: 4") }) {
		t.Fatalf("the shared counter did not reach 4:\n%s", w.Logs())
	}
}

// TestProxyWasmSDKPostponeRequests: postpone_requests pauses every
// request and resumes it from its next one-second tick
// (proxy_on_tick, proxy_set_effective_context, proxy_continue_stream):
// each request reaches the upstream, after a wait of up to a tick.
func TestProxyWasmSDKPostponeRequests(t *testing.T) {
	module := buildSDKFilter(t, "postpone_requests")
	up := startEcho(t, "e1")
	w := startWeir(t, sdkRoute(up, "", module, "          pool_size: 1\n"))
	c := newClient(w.Addr)
	var wg sync.WaitGroup
	codes := make([]int, 3)
	start := time.Now()
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = get(t, c, "/p", nil)
		}()
	}
	wg.Wait()
	for i, code := range codes {
		if code != 200 {
			t.Fatalf("request %d: %d, want 200 once a tick resumed it\n%s", i, code, w.Logs())
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the requests took %v; a tick every second should resume them", d)
	}
	l := w.Logs()
	if strings.Count(l, "postpone request with contextID=") != 3 || strings.Count(l, "resume request with contextID=") != 3 {
		t.Fatalf("want 3 postponed and 3 resumed requests in the guest's log:\n%s", l)
	}
}

// TestProxyWasmAssemblyScript: a filter written with the AssemblyScript
// SDK (npm @solo-io/proxy-runtime 0.1.8, AssemblyScript 0.14) loads and
// runs: it imports WASI as wasi_unstable and picks its filter by the
// plugin_root_id property (root_id). testdata/assemblyscript/
// add_header.wasm is built from its source by build.sh;
// TestAssemblyScriptModuleMatchesSource checks that it still is.
func TestProxyWasmAssemblyScript(t *testing.T) {
	module, err := filepath.Abs("testdata/assemblyscript/add_header.wasm")
	if err != nil {
		t.Fatal(err)
	}
	up := startEcho(t, "e1")
	w := startWeir(t, sdkRoute(up, "", module, "          root_id: add_header\n          config: from-config\n"))
	code, _, h := get(t, newClient(w.Addr), "/a", nil)
	if code != 200 || string(h.Peek("Hello")) != "from-config" {
		t.Fatalf("%d hello=%q, want 200 and the configuration: %s", code, h.Peek("Hello"), h.Header())
	}
}

// TestAssemblyScriptModuleMatchesSource rebuilds the committed
// AssemblyScript module with the pinned compiler (npm ci) and checks it
// is byte for byte the one committed.
func TestAssemblyScriptModuleMatchesSource(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("npm is needed to rebuild the AssemblyScript test module")
		}
		t.Skip("npm not installed")
	}
	out := filepath.Join(t.TempDir(), "add_header.wasm")
	build := exec.Command("./build.sh", out)
	build.Dir = "testdata/assemblyscript"
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/assemblyscript/add_header.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("testdata/assemblyscript/add_header.wasm differs from what build.sh makes of its source: run build.sh and commit the module")
	}
}

// TestProxyWasmSDKVMPluginConfiguration: vm_plugin_configuration logs
// the VM configuration (vm_config, given to proxy_on_vm_start) and the
// plugin configuration (config, given to proxy_on_configure).
func TestProxyWasmSDKVMPluginConfiguration(t *testing.T) {
	module := buildSDKFilter(t, "vm_plugin_configuration")
	up := startEcho(t, "e1")
	w := startWeir(t, sdkRoute(up, "", module, "          pool_size: 1\n          vm_config: {vm: one}\n          config: plugin-two\n"))
	l := w.Logs()
	if !strings.Contains(l, `vm config (12 bytes): {\"vm\":\"one\"}`) || !strings.Contains(l, "plugin config (10 bytes): plugin-two") {
		t.Fatalf("the guest did not log both configurations:\n%s", l)
	}
}
