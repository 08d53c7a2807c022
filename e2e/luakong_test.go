package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// kongDir is the absolute path of a Kong-style test plugin.
func kongDir(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "plugins", "lua", "testdata", "kong", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLuaKongPlugins runs Kong-style plugins (handler.lua + schema.lua,
// written to Kong's plugin format and PDK; see
// plugins/lua/testdata/kong/README.md) unchanged through the real binary.
func TestLuaKongPlugins(t *testing.T) {
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		switch {
		case strings.HasPrefix(string(rc.Path()), "/items/"):
			rc.SetContentType("application/json")
			rc.SetBodyString(`{"name":"widget","note":"call Alice Smith"}`)
		default:
			var hdrs []string
			for k, v := range rc.Request.Header.All() {
				hdrs = append(hdrs, string(k)+"="+string(v))
			}
			rc.SetBodyString(strings.Join(hdrs, "\n"))
		}
	})
	route := func(name, path, plugin, conf string) string {
		return fmt.Sprintf(`  - name: %s
    paths: ["%s"]
    service: a
    plugins:
      - name: lua
        config:
          kong_plugin: %q
          config: %s
`, name, path, kongDir(t, plugin), conf)
	}
	w := startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://`+up+`"}]}]
routes:
`+route("term", "/term", "terminator", "{}")+
		route("term-echo", "/echo", "terminator", `{status_code: 403, echo: true, trigger: X-Echo}`)+
		route("corr", "/corr", "correlation", `{echo_downstream: true}`)+
		route("corr-uuid", "/uuid", "correlation", `{generator: uuid, header_name: X-Trace}`)+
		route("tag", "/items/", "jsontag", `{field: id, redact: "(alice)"}`)+
		route("multi", "/multi", "multi", `{secret: s3cret}`)+
		route("tmpl", "/tmpl", "template", `{}`))
	c := newClient(w.Addr)

	// request-termination-like: defaults from schema.lua (503, its message).
	if code, body, _ := get(t, c, "/term", nil); code != 503 || body != `{"message":"Service unavailable"}` {
		t.Errorf("terminator: %d %s", code, body)
	}
	// echo with a trigger: absent trigger lets the request through ...
	if code, body, _ := get(t, c, "/echo", nil); code != 200 || !strings.Contains(body, "Host=") {
		t.Errorf("terminator echo without trigger: %d %s", code, body)
	}
	// ... present, it echoes the request as JSON.
	code, body, _ := get(t, c, "/echo?a=1&flag", map[string]string{"X-Echo": "yes"})
	var echo struct {
		Message string
		Route   string
		Request struct {
			Method, Path, Scheme string
			Query                map[string]any
			Headers              map[string]string
		}
	}
	if err := json.Unmarshal([]byte(body), &echo); code != 403 || err != nil {
		t.Fatalf("terminator echo: %d %s (%v)", code, body, err)
	}
	if echo.Message != "Forbidden" || echo.Route != "term-echo" || echo.Request.Method != "GET" || echo.Request.Path != "/echo" ||
		echo.Request.Scheme != "http" || echo.Request.Query["a"] != "1" || echo.Request.Query["flag"] != true || echo.Request.Headers["x-echo"] != "yes" {
		t.Errorf("terminator echo: %+v", echo)
	}

	// correlation-id-like, generator uuid#counter: node id # counter,
	// sent upstream and echoed downstream from header_filter.
	code, body, h := get(t, c, "/corr", nil)
	id := string(h.Peek("Kong-Request-ID"))
	if code != 200 || !regexp.MustCompile(`^[0-9a-f-]{36}#\d+$`).MatchString(id) || !strings.Contains(body, "Kong-Request-Id="+id) {
		t.Errorf("correlation: %d id %q body %s", code, id, body)
	}
	// an incoming id is kept
	if _, body, h := get(t, c, "/corr", map[string]string{"Kong-Request-ID": "given"}); string(h.Peek("Kong-Request-ID")) != "given" || !strings.Contains(body, "Kong-Request-Id=given") {
		t.Errorf("correlation kept id: %q %s", h.Peek("Kong-Request-ID"), body)
	}
	// generator uuid, custom header, not echoed
	if _, body, h := get(t, c, "/uuid", nil); len(h.Peek("X-Trace")) != 0 || !regexp.MustCompile(`X-Trace=[0-9a-f]{8}-[0-9a-f]{4}-4`).MatchString(body) {
		t.Errorf("correlation uuid: %q %s", h.Peek("X-Trace"), body)
	}

	// cjson + ngx.re: the id from a named group, the body rewritten in
	// body_filter, a regex replacement with a capture.
	code, body, h = get(t, c, "/items/42", nil)
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil {
		t.Fatalf("jsontag: %d %s", code, body)
	}
	if doc["id"] != float64(42) || doc["name"] != "widget" || doc["note"] != "call [Alice] Smith" || string(h.ContentType()) != "application/json" {
		t.Errorf("jsontag: %v %s", doc, h.ContentType())
	}
	if code, body, _ := get(t, c, "/items/x", nil); code != 404 || body != `{"message":"no item id in the path"}` {
		t.Errorf("jsontag without id: %d %s", code, body)
	}

	// multi-file: require of the plugin's own modules, init_worker, ngx.var,
	// ngx.md5 + ngx.encode_base64.
	if _, body, _ := get(t, c, "/multi", nil); !strings.Contains(body, "X-Ready=true") || !strings.Contains(body, "X-Method-Var=GET") ||
		!regexp.MustCompile(`X-Signature=[A-Za-z0-9+/]{40}=*`).MatchString(body) {
		t.Errorf("multi: %s", body)
	}

	// the Kong/kong-plugin template style: base_plugin, ngx.req,
	// ngx.header, body_filter over ngx.arg.
	code, body, h = get(t, c, "/tmpl", nil)
	if code != 200 || string(h.Peek("Bye-World")) != "this is on the response from template" ||
		!strings.Contains(body, `"answer":42`) || !strings.Contains(body, `Hello-World=this is on a request`) {
		t.Errorf("template: %d %q %s", code, h.Peek("Bye-World"), body)
	}
}

// TestLuaKongValidate: weir validate refuses a config schema.lua refuses,
// naming the field.
func TestLuaKongValidate(t *testing.T) {
	w := &weir{t: t}
	w.File = filepath.Join(t.TempDir(), "weir.yaml")
	w.write(`
listen: "127.0.0.1:1"
services: [{name: a, targets: [{url: "http://127.0.0.1:2"}]}]
routes:
  - name: r
    paths: ["/"]
    service: a
    plugins:
      - name: lua
        config:
          kong_plugin: "` + kongDir(t, "terminator") + `"
          config: {status_code: 999}
`)
	out, code := validateFile(t, w.File)
	if code == 0 || !strings.Contains(out, "config.status_code: value should be between 100 and 599") {
		t.Fatalf("validate: exit %d\n%s", code, out)
	}
}

// TestLuaKongSeveralPlugins: a route runs several lua plugins, the global
// one it keeps and its own two Kong plugins, ordered by PRIORITY (highest
// first) in access, header_filter and body_filter alike, whatever their
// order in the config; a route's lua plugin replaces the global one only
// when it has the same instance name.
func TestLuaKongSeveralPlugins(t *testing.T) {
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		rc.SetBodyString("order=" + string(rc.Request.Header.Peek("X-Order")))
	})
	w := startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://%s"}]}]
plugins:
  - name: lua
    config:
      name: tagger
      source: |
        PRIORITY = 1500
        local function add(h) return (h or "") .. "g," end
        function access() weir.request.set_header("X-Order", add(weir.request.get_header("X-Order"))) end
        function header_filter() weir.response.set_header("X-Order-Resp", add(weir.response.get_header("X-Order-Resp"))) end
        function body_filter(body) return body .. "|g" end
routes:
  - name: both
    paths: ["/both"]
    service: a
    plugins:
      - {name: lua, config: {kong_plugin: %q}}
      - {name: lua, config: {kong_plugin: %q}}
  - name: replaced
    paths: ["/replaced"]
    service: a
    plugins:
      - name: lua
        config: {name: tagger, source: 'function access() weir.request.set_header("X-Order", (weir.request.get_header("X-Order") or "") .. "route,") end'}
      - {name: lua, config: {kong_plugin: %q}}
`, up, kongDir(t, "order_lo"), kongDir(t, "order_hi"), kongDir(t, "order_lo")))
	c := newClient(w.Addr)

	code, body, h := get(t, c, "/both", nil)
	if code != 200 || body != "order=hi,g,lo,|hi|g|lo" || string(h.Peek("X-Order-Resp")) != "hi,g,lo," {
		t.Errorf("/both: %d %q X-Order-Resp %q; want the order hi (2000), g (1500, global), lo (1000) in every phase", code, body, h.Peek("X-Order-Resp"))
	}
	code, body, h = get(t, c, "/replaced", nil)
	if code != 200 || body != "order=lo,route,|lo" || string(h.Peek("X-Order-Resp")) != "lo," {
		t.Errorf("/replaced: %d %q X-Order-Resp %q; want the route's tagger instead of the global one", code, body, h.Peek("X-Order-Resp"))
	}
	// log runs for each plugin, in the same order (after the answer).
	if !waitUntil(10*time.Second, 20*time.Millisecond, func() bool {
		logs := w.Logs()
		i, j := strings.Index(logs, "order log hi"), strings.Index(logs, "order log lo")
		return i >= 0 && j > i
	}) {
		t.Errorf("log phases: want order log hi then order log lo\n%s", w.Logs())
	}
}

// TestLuaKongCtxShared: two Kong plugins on one route share kong.ctx.shared
// and ngx.ctx, as Kong's plugins of one request do (share_set, PRIORITY
// 900, writes them in access; share_get, 800, reads them in access,
// header_filter and log), while kong.ctx.plugin stays each plugin's own;
// nothing of a request reaches the next one (one VM each, so a leak would
// show).
func TestLuaKongCtxShared(t *testing.T) {
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		rc.SetBodyString("access=" + string(rc.Request.Header.Peek("X-Shared-Access")))
	})
	w := startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://%s"}]}]
routes:
  - name: shared
    paths: ["/shared"]
    service: a
    plugins:
      - {name: lua, config: {kong_plugin: %q, pool_size: 1}}
      - {name: lua, config: {kong_plugin: %q, pool_size: 1}}
`, up, kongDir(t, "share_get"), kongDir(t, "share_set")))
	c := newClient(w.Addr)

	for i, tenant := range []string{"acme", "", "globex", ""} {
		var hdr map[string]string
		want := "nil/nil/nil/nil"
		if tenant != "" {
			hdr = map[string]string{"X-Tenant": tenant}
			want = tenant + "/share_set/ngx:" + tenant + "/nil"
		}
		code, body, h := get(t, c, "/shared", hdr)
		if code != 200 || body != "access="+want {
			t.Errorf("request %d (tenant %q): %d %q; want access=%s (share_get reads share_set's kong.ctx.shared and ngx.ctx, not its kong.ctx.plugin)", i, tenant, code, body, want)
		}
		if got := string(h.Peek("X-Shared-Header")); got != want+"/1" {
			t.Errorf("request %d header_filter: X-Shared-Header %q, want %q", i, got, want+"/1")
		}
		if got := string(h.Peek("X-Set-Plugin")); got != "share_set's own" {
			t.Errorf("request %d: share_set's kong.ctx.plugin in header_filter: %q", i, got)
		}
	}
	// log runs after each answer: each tenant's line once, the tenant-less
	// line for each of the two requests without one.
	want := map[string]int{"acme/share_set/ngx:acme/nil": 1, "globex/share_set/ngx:globex/nil": 1, "nil/nil/nil/nil": 2}
	if !waitUntil(10*time.Second, 20*time.Millisecond, func() bool {
		for seen, n := range want {
			if strings.Count(w.Logs(), "share_get log: "+seen) != n {
				return false
			}
		}
		return true
	}) {
		t.Errorf("log phase: want share_get to log %v (times)\n%s", want, w.Logs())
	}
}
