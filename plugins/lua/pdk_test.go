package lua

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// TestRequestRead covers the weir.request getters; the assertions run in
// Lua (an assert failure is an error from OnRequest).
func TestRequestRead(t *testing.T) {
	f := newFilter(t, `
function access()
  local r = weir.request
  assert(r.get_header("x-token") == "abc", "get_header is case-insensitive")
  assert(r.get_header("X-Empty") == "", "empty value")
  assert(r.get_header("X-Absent") == nil, "absent header")
  assert(r.get_method() == "POST", "method")
  assert(r.get_path() == "/users/7", "normalized path, got " .. r.get_path())
  assert(r.get_query_arg("page") == "2", "query arg")
  assert(r.get_query_arg("flag") == "", "valueless query arg")
  assert(r.get_query_arg("none") == nil, "absent query arg")
  assert(r.get_query_arg("q") == "a b", "decoded query arg")
  assert(r.get_body() == "", "no body")
  local h = r.get_headers()
  assert(h["x-token"] == "abc", "get_headers lower-cases names")
  assert(type(h["x-multi"]) == "table" and #h["x-multi"] == 3, "repeated header is a list")
  assert(h["x-multi"][1] == "1" and h["x-multi"][3] == "3", "list order")
  assert(h["host"] == "example.com", "host is listed")
end`, nil, nil)
	_, c := request("POST", "http://example.com/users/../users/7?page=2&flag&q=a+b",
		"Host: example.com", "X-Token: abc", "X-Empty:", "X-Multi: 1", "X-Multi: 2", "X-Multi: 3")
	defer sdk.ReleaseCtx(c)
	c.SetPath([]byte("/users/7")) // what the proxy's normalizer produced
	access(t, f, c)
}

func TestRequestMethodOther(t *testing.T) {
	f := newFilter(t, `function access() assert(weir.request.get_method() == "PURGE") end`, nil, nil)
	_, c := request("PURGE", "/")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
}

// TestRequestBody, behind the real server: get_body returns a body of up
// to 256 KiB, sent with Content-Length or chunked, and set_body replaces
// it (the upstream gets it with a Content-Length to match); a larger body
// streams, get_body returns nil and set_body is an error.
func TestRequestBody(t *testing.T) {
	f := newFilter(t, `
function access()
  local b = weir.request.get_body()
  if b == nil then
    weir.response.set_header("X-Body", "nil")
  else
    weir.response.set_header("X-Body", tostring(#b))
  end
  if weir.request.get_header("X-Replace") then
    weir.request.set_body("[" .. (b or "") .. "]")
  end
end`, nil, nil)
	g := serve(t, f)
	big := strings.Repeat("x", 300<<10)
	for _, tc := range []struct {
		name     string
		send     plugintest.Send
		seen     string
		status   int
		upstream string
	}{
		{"content-length", plugintest.Send{Body: "ping"}, "4", 200, "ping"},
		{"chunked", plugintest.Send{Body: "ping", Chunked: true}, "4", 200, "ping"},
		{"set_body", plugintest.Send{Body: "ping", HeaderLines: []string{"X-Replace", "1"}}, "4", 200, "[ping]"},
		{"set_body chunked", plugintest.Send{Body: "ping", Chunked: true, HeaderLines: []string{"X-Replace", "1"}}, "4", 200, "[ping]"},
		{"no body", plugintest.Send{Method: "POST"}, "0", 200, ""},
		{"streamed", plugintest.Send{Body: big}, "nil", 200, big},
		{"streamed chunked", plugintest.Send{Body: big, Chunked: true}, "nil", 200, big},
		{"set_body on a streamed body", plugintest.Send{Body: big, HeaderLines: []string{"X-Replace", "1"}}, "nil", 500, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := g.Do(t, tc.send)
			if a.Status != tc.status || a.Header.Get("X-Body") != tc.seen {
				t.Fatalf("status %d, X-Body %q, want %d %q (%s)", a.Status, a.Header.Get("X-Body"), tc.status, tc.seen, a.Body)
			}
			if tc.status != 200 {
				if a.Upstream != nil {
					t.Fatal("a failed request reached the upstream")
				}
				return
			}
			if a.Upstream == nil || string(a.Upstream.Body) != tc.upstream {
				t.Fatalf("upstream got %v", a.Upstream)
			}
			if len(tc.upstream) < 256<<10 && a.Upstream.ContentLength != int64(len(tc.upstream)) {
				t.Fatalf("upstream got Content-Length %d for %d bytes", a.Upstream.ContentLength, len(tc.upstream))
			}
		})
	}
}

func TestRequestWrite(t *testing.T) {
	f := newFilter(t, `
function access()
  local r = weir.request
  r.set_header("X-Added", "v1")
  r.set_header("X-Replaced", "new")
  r.set_header("X-Number", 42)
  r.clear_header("X-Secret")
  r.set_path("/v2/users/7")
  r.set_query_arg("page", "3")
  r.set_query_arg("new", "a&b")
  r.clear_query_arg("token")
end`, nil, nil)
	rc, c := request("POST", "/users/7?page=2&token=s3cret", "X-Replaced: old", "X-Secret: s")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
	h := &rc.Request.Header
	for k, want := range map[string]string{"X-Added": "v1", "X-Replaced": "new", "X-Number": "42", "X-Secret": ""} {
		if got := string(h.Peek(k)); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := string(c.UpstreamPath()); got != "/v2/users/7" {
		t.Errorf("upstream path = %q", got)
	}
	if got := string(c.Path()); got != "/users/7" {
		t.Errorf("Path() changed to %q; set_path must only change the upstream path", got)
	}
	if got := string(rc.Request.URI().QueryString()); got != "page=3&new=a%26b" {
		t.Errorf("query string = %q, want page=3&new=a%%26b", got)
	}
}

// TestPDKErrors: misuse of the PDK is a Lua error, reported with the
// script position, and nothing is written.
func TestPDKErrors(t *testing.T) {
	tests := []struct{ name, access, err string }{
		{"header name with space", `weir.request.set_header("X Bad", "v")`,
			`lua: access: source:1: weir.request.set_header: "X Bad" is not a valid header name (RFC 9110 token characters only)`},
		{"header name empty", `weir.request.set_header("", "v")`,
			`lua: access: source:1: weir.request.set_header: "" is not a valid header name (RFC 9110 token characters only)`},
		{"header name colon", `weir.request.set_header("X:Y", "v")`,
			`lua: access: source:1: weir.request.set_header: "X:Y" is not a valid header name (RFC 9110 token characters only)`},
		{"header value CRLF", `weir.request.set_header("X-A", "v\r\nX-Injected: 1")`,
			`lua: access: source:1: weir.request.set_header: the header value contains a control character (CR, LF, NUL...)`},
		{"header value NUL", `weir.request.set_header("X-A", "v\0")`,
			`lua: access: source:1: weir.request.set_header: the header value contains a control character (CR, LF, NUL...)`},
		{"content-length", `weir.request.set_header("content-length", "5")`,
			`lua: access: source:1: weir.request.set_header: content-length is set by the gateway from the body actually sent`},
		{"transfer-encoding", `weir.response.set_header("Transfer-Encoding", "chunked")`,
			`lua: access: source:1: weir.response.set_header: Transfer-Encoding is set by the gateway from the body actually sent`},
		{"header value table", `weir.request.set_header("X-A", {})`,
			`lua: access: source:1: bad argument #2 to set_header (string expected, got table)`},
		{"missing argument", `weir.request.get_header()`,
			`lua: access: source:1: bad argument #1 to get_header (string expected, got nil)`},
		{"relative path", `weir.request.set_path("v2")`,
			`lua: access: source:1: weir.request.set_path: the path must start with /, got "v2"`},
		{"path with newline", `weir.request.set_path("/a\nb")`,
			`lua: access: source:1: weir.request.set_path: the path contains a control character`},
		{"log field name", `weir.log.field("Bad-Name", "v")`,
			`lua: access: source:1: weir.log.field: "Bad-Name" is not a field name: use 1 to 64 lower-case letters, digits and _`},
		{"log field value", `weir.log.field("ok", {})`,
			`lua: access: source:1: bad argument #2 to field (string expected, got table)`},
		{"exit status", `weir.response.exit(99)`,
			`lua: access: source:1: weir.response.exit: status must be between 200 and 599, got 99`},
		{"exit body type", `weir.response.exit(403, true)`,
			`lua: access: source:1: bad argument #2 to exit (string expected, got boolean)`},
		{"exit headers type", `weir.response.exit(403, "x", "X-A: 1")`,
			`lua: access: source:1: bad argument #3 to exit (table expected, got string)`},
		{"exit bad header", `weir.response.exit(403, "x", {["X-A"] = "1\n2"})`,
			`lua: access: source:1: weir.response.exit: invalid value for header X-A`},
		{"exit bad header name", `weir.response.exit(403, "x", {[1] = "v"})`,
			`lua: access: source:1: weir.response.exit: invalid header name 1`},
		{"exit function body", `weir.response.exit(403, {f = print})`,
			`lua: access: source:1: weir.response.exit: the body table cannot be sent as JSON: f: a function cannot be converted (only nil, booleans, numbers, strings and tables)`},
		{"exit cyclic body", `local t = {} t.t = t weir.response.exit(403, t)`,
			`lua: access: source:1: weir.response.exit: the body table cannot be sent as JSON: tables nested more than 32 deep (or a table that contains itself)`},
		{"set_status in access", `weir.response.set_status(500)`,
			`lua: access: source:1: weir.response.set_status is not available in access`},
		{"clear response header in access", `weir.response.clear_header("X-A")`,
			`lua: access: source:1: weir.response.clear_header is not available in access`},
		{"ctx read-only", `weir.ctx.route = "other"`,
			`lua: access: source:1: weir.ctx is read-only; keep request data in weir.ctx.shared`},
		{"new global", `counter = 1`,
			`lua: access: source:1: assignment to global "counter": globals are read-only once the script has loaded; use a local, or weir.ctx.shared to keep data between phases`},
		{"runtime error", `local t = nil; return t.x`,
			`lua: access: source:1: attempt to index a non-table object(nil) with key 'x'`},
		{"error()", `error("denied by policy")`,
			`lua: access: source:1: denied by policy`},
		{"error with table", `error({code = 1})`,
			`lua: access: table: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilter(t, "function access() "+tt.access+" end", nil, nil)
			rc, c := request("GET", "/")
			defer sdk.ReleaseCtx(c)
			before := base(f).errors[phaseAccess].Get()
			st, err := f.OnRequest(c)
			if err == nil {
				t.Fatalf("no error (status %v)", st)
			}
			if !strings.HasPrefix(err.Error(), tt.err) || (!strings.HasSuffix(tt.err, ": ") && err.Error() != tt.err) {
				t.Fatalf("error = %q\nwant    %q", err, tt.err)
			}
			if got := base(f).errors[phaseAccess].Get() - before; got != 1 {
				t.Errorf("weir_lua_errors_total grew by %d, want 1", got)
			}
			if st != sdk.Continue {
				t.Errorf("status = %v, want Continue with the error", st)
			}
			if rc.Response.StatusCode() != 200 || len(rc.Response.Body()) != 0 {
				t.Errorf("the response was written: %d %q", rc.Response.StatusCode(), rc.Response.Body())
			}
		})
	}
}

// TestPhaseRestrictions: request writers only work in access, response
// writers not in log.
func TestPhaseRestrictions(t *testing.T) {
	tests := []struct{ phase, call, err string }{
		{"header_filter", `weir.request.set_header("X-A", "1")`, "lua: header_filter: source:1: weir.request.set_header is not available in header_filter"},
		{"header_filter", `weir.request.clear_header("X-A")`, "lua: header_filter: source:1: weir.request.clear_header is not available in header_filter"},
		{"header_filter", `weir.request.set_path("/x")`, "lua: header_filter: source:1: weir.request.set_path is not available in header_filter"},
		{"header_filter", `weir.request.set_query_arg("a", "1")`, "lua: header_filter: source:1: weir.request.set_query_arg is not available in header_filter"},
		{"header_filter", `weir.request.clear_query_arg("a")`, "lua: header_filter: source:1: weir.request.clear_query_arg is not available in header_filter"},
		{"header_filter", `weir.request.set_body("x")`, "lua: header_filter: source:1: weir.request.set_body is not available in header_filter"},
		{"header_filter", `weir.response.exit(403)`, "lua: header_filter: source:1: weir.response.exit is not available in header_filter"},
		{"body_filter", `weir.response.set_status(201)`, "lua: body_filter: source:1: weir.response.set_status is not available in body_filter"},
		{"log", `weir.response.set_header("X-A", "1")`, "lua: log: source:1: weir.response.set_header is not available in log"},
	}
	for _, tt := range tests {
		t.Run(tt.phase+" "+tt.call, func(t *testing.T) {
			lb := &logBuf{}
			f := newFilter(t, "function "+tt.phase+"(body) "+tt.call+" end", nil, lb)
			_, c := request("GET", "/")
			defer sdk.ReleaseCtx(c)
			var err error
			if tt.phase == "log" {
				f.(sdk.LogFilter).OnLog(c)
				if !strings.Contains(lb.String(), tt.err) {
					t.Fatalf("log = %s\nwant it to contain %q", lb, tt.err)
				}
				return
			}
			err = f.(sdk.ResponseFilter).OnResponse(c)
			if err == nil || err.Error() != tt.err {
				t.Fatalf("error = %v\nwant    %s", err, tt.err)
			}
		})
	}
}

// TestPDKAtLoad: the request API is unavailable at the top level.
func TestPDKAtLoad(t *testing.T) {
	for _, src := range []string{
		`local m = weir.request.get_method() function access() end`,
		`local r = weir.ctx.route function access() end`,
	} {
		f, err := New(build(nil), cfgJSON(t, src, nil))
		if err == nil {
			f.(sdk.Closer).Close()
			t.Fatalf("%s: no error", src)
		}
		if !strings.Contains(err.Error(), "there is no request while the script loads") {
			t.Fatalf("%s: %v", src, err)
		}
	}
	// weir.log works at load time.
	lb := &logBuf{}
	newFilter(t, `weir.log.info("loaded") function access() end`, nil, lb)
	if !strings.Contains(lb.String(), "msg=loaded") || !strings.Contains(lb.String(), "phase=init") {
		t.Fatalf("log = %s", lb)
	}
}

func TestExit(t *testing.T) {
	f := newFilter(t, `
function access()
  local who = weir.request.get_header("X-Who")
  if who == "table" then
    weir.response.exit(403, {error = "forbidden", codes = {1, 2}, empty = {}}, {["X-Reason"] = "policy"})
  elseif who == "string" then
    weir.response.exit(429, "slow down", {["Content-Type"] = "text/plain", ["Retry-After"] = 3})
  elseif who == "bare" then
    weir.response.exit(204)
  elseif who == "pcall" then
    local ok = pcall(weir.response.exit, 401, "caught")
    weir.request.set_header("X-After-Pcall", tostring(ok))
    return
  end
  weir.request.set_header("X-Reached", "yes")
end`, nil, nil)
	tests := []struct {
		who, body string
		status    int
		headers   map[string]string
	}{
		{"table", `{"codes":[1,2],"empty":{},"error":"forbidden"}`, 403, map[string]string{"Content-Type": "application/json", "X-Reason": "policy"}},
		{"string", "slow down", 429, map[string]string{"Content-Type": "text/plain", "Retry-After": "3"}},
		{"bare", "", 204, nil},
		{"pcall", "caught", 401, nil},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			rc, c := request("GET", "/", "X-Who: "+tt.who)
			defer sdk.ReleaseCtx(c)
			if st := access(t, f, c); st != sdk.Stop {
				t.Fatalf("status = %v, want Stop", st)
			}
			if rc.Response.StatusCode() != tt.status || string(rc.Response.Body()) != tt.body {
				t.Errorf("response = %d %q, want %d %q", rc.Response.StatusCode(), rc.Response.Body(), tt.status, tt.body)
			}
			for k, v := range tt.headers {
				if got := string(rc.Response.Header.Peek(k)); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if len(rc.Request.Header.Peek("X-Reached")) != 0 {
				t.Error("code after exit ran")
			}
			if tt.who == "pcall" && string(rc.Request.Header.Peek("X-After-Pcall")) != "false" {
				t.Error("pcall did not see exit as an error")
			}
		})
	}
	// Without an exit the request continues; the state that exited is
	// reused (an exit does not spend it).
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	if st := access(t, f, c); st != sdk.Continue || string(rc.Request.Header.Peek("X-Reached")) != "yes" {
		t.Fatalf("status %v, X-Reached %q", st, rc.Request.Header.Peek("X-Reached"))
	}
	if p := base(f).pool; p.created.Load() != 1 {
		t.Errorf("%d states were created, want 1 (exits must not discard states)", p.created.Load())
	}
}

// TestExitKeepsUpvalues: closures created in the frames an exit unwinds
// keep their captured values (the unwinding closes upvalues).
func TestExitKeepsUpvalues(t *testing.T) {
	f := newFilter(t, `
local saved = {}
function access()
  local n = weir.request.get_header("X-N")
  if n == "1" then
    local captured = "kept"
    saved.f = function() return captured end
    weir.response.exit(403)
  end
  local a, b, c = "clobber", "clobber", "clobber"
  weir.request.set_header("X-Got", saved.f())
end`, map[string]any{"pool_size": 1}, nil)
	_, c := request("GET", "/", "X-N: 1")
	access(t, f, c)
	sdk.ReleaseCtx(c)
	rc, c := request("GET", "/", "X-N: 2")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
	if got := string(rc.Request.Header.Peek("X-Got")); got != "kept" {
		t.Fatalf("upvalue = %q, want kept", got)
	}
}

// TestResponseHeaderInAccess: set in access, the header is deferred to the
// final response (sdk.Ctx.SetResponseHeader), not written on the empty one.
func TestResponseHeaderInAccess(t *testing.T) {
	f := newFilter(t, `function access()
  weir.response.set_header("X-Trace", "t1")
  assert(weir.response.get_header("X-Trace") == nil, "no response yet")
  assert(weir.response.get_status() == nil, "no status yet")
end`, nil, nil)
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
	if len(rc.Response.Header.Peek("X-Trace")) != 0 {
		t.Fatal("written directly in the request phase")
	}
	rc.Response.SetStatusCode(502) // whatever the final response is
	c.ApplyResponseHeaders()
	if got := string(rc.Response.Header.Peek("X-Trace")); got != "t1" {
		t.Fatalf("X-Trace = %q after ApplyResponseHeaders", got)
	}
}

func TestHeaderFilter(t *testing.T) {
	f := newFilter(t, `function header_filter()
  local r = weir.response
  assert(r.get_status() == 200, "status")
  assert(r.get_header("X-Upstream") == "u", "get_header")
  assert(r.get_header("X-None") == nil, "absent")
  r.set_header("X-Added", "a")
  r.clear_header("Server-Timing")
  r.set_status(203)
end`, nil, nil)
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	rc.Response.Header.Set("X-Upstream", "u")
	rc.Response.Header.Set("Server-Timing", "db;dur=5")
	rc.Response.SetBodyString("hello")
	if err := f.(sdk.ResponseFilter).OnResponse(c); err != nil {
		t.Fatal(err)
	}
	r := &rc.Response
	if r.StatusCode() != 203 || string(r.Header.Peek("X-Added")) != "a" || len(r.Header.Peek("Server-Timing")) != 0 {
		t.Fatalf("response:\n%s", r.String())
	}
	if string(r.Body()) != "hello" {
		t.Fatalf("body changed: %q", r.Body())
	}
}

func TestBodyFilter(t *testing.T) {
	f := newFilter(t, `
function header_filter()
  weir.response.set_header("X-Seen", "1")
end
function body_filter(body)
  if weir.request.get_header("X-Keep") then return nil end
  weir.response.set_header("X-Len", #body)
  return string.upper(body)
end`, nil, nil)
	rf := f.(sdk.ResponseFilter)

	rc, c := request("GET", "/")
	rc.Response.SetBodyString("hello")
	if err := rf.OnResponse(c); err != nil {
		t.Fatal(err)
	}
	if string(rc.Response.Body()) != "HELLO" || string(rc.Response.Header.Peek("X-Len")) != "5" || string(rc.Response.Header.Peek("X-Seen")) != "1" {
		t.Fatalf("response:\n%s", rc.Response.String())
	}
	sdk.ReleaseCtx(c)

	rc, c = request("GET", "/", "X-Keep: 1")
	rc.Response.SetBodyString("hello")
	if err := rf.OnResponse(c); err != nil {
		t.Fatal(err)
	}
	if string(rc.Response.Body()) != "hello" {
		t.Fatalf("nil return changed the body: %q", rc.Response.Body())
	}
	sdk.ReleaseCtx(c)

	// A streamed body is not read: body_filter is skipped, header_filter
	// still runs.
	rc, c = request("GET", "/")
	defer sdk.ReleaseCtx(c)
	rc.Response.SetBodyStream(strings.NewReader("streamed"), -1)
	if err := rf.OnResponse(c); err != nil {
		t.Fatal(err)
	}
	if !rc.Response.IsBodyStream() || len(rc.Response.Header.Peek("X-Len")) != 0 || string(rc.Response.Header.Peek("X-Seen")) != "1" {
		t.Fatalf("streamed response:\n%s", rc.Response.Header.String())
	}
}

func TestBodyFilterBadReturn(t *testing.T) {
	f := newFilter(t, `function body_filter(body) return 42 end`, nil, nil)
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	rc.Response.SetBodyString("x")
	err := f.(sdk.ResponseFilter).OnResponse(c)
	if err == nil || err.Error() != "lua: body_filter must return a string (the new body) or nil (keep it), got a number" {
		t.Fatalf("error = %v", err)
	}
	if string(rc.Response.Body()) != "x" {
		t.Fatalf("body = %q", rc.Response.Body())
	}
}

func TestCtx(t *testing.T) {
	f := newFilter(t, `
function access()
  local c = weir.ctx
  assert(c.route == weir.request.get_header("X-Route"), "route")
  assert(c.service == "svc", "service")
  assert(c.request_id == "req-1", "request_id")
  assert(c.param("id") == "7", "param")
  assert(c.param("none") == nil, "absent param")
  assert(c.client_ip == "192.0.2.7", "client_ip " .. tostring(c.client_ip))
  assert(c.unknown == nil, "unknown field")
  local want = weir.request.get_header("X-Consumer")
  assert(c.consumer == want, "consumer " .. tostring(c.consumer))
end`, nil, nil)
	for _, tc := range []struct {
		route    string
		consumer *sdk.Consumer
	}{{"r", nil}, {"other-route", &sdk.Consumer{Name: "alice"}}} {
		hdr := []string{"X-Route: " + tc.route}
		if tc.consumer != nil {
			hdr = append(hdr, "X-Consumer: "+tc.consumer.Name)
		}
		_, c := request("GET", "/users/7", hdr...)
		c.Route = tc.route
		c.AddParam("id", []byte("7"))
		if tc.consumer != nil {
			c.SetConsumer(tc.consumer, "k1")
		}
		access(t, f, c)
		sdk.ReleaseCtx(c)
	}
}

// TestShared: weir.ctx.shared carries data from one phase to the next of
// the same request (through the Ctx, whatever states serve the phases),
// and starts empty for every request.
func TestShared(t *testing.T) {
	lb := &logBuf{}
	f := newFilter(t, `
function access()
  local s = weir.ctx.shared
  assert(next(s) == nil, "shared starts empty")
  s.user = weir.request.get_header("X-User")
  s.n = 1
  s.list = {"a", "b"}
  s.nested = {ok = true}
end
function header_filter()
  local s = weir.ctx.shared
  s.n = s.n + 1
  weir.response.set_header("X-User", s.user)
end
function body_filter(body)
  return body .. ":" .. weir.ctx.shared.n
end
function log()
  local s = weir.ctx.shared
  weir.log.info("user=", s.user, " n=", s.n, " list=", table.concat(s.list, ","), " ok=", tostring(s.nested.ok))
end`, map[string]any{"pool_size": 2}, lb)
	for _, user := range []string{"alice", "bob"} {
		rc, c := request("GET", "/", "X-User: "+user)
		access(t, f, c)
		rc.Response.SetBodyString("body")
		if err := f.(sdk.ResponseFilter).OnResponse(c); err != nil {
			t.Fatal(err)
		}
		f.(sdk.LogFilter).OnLog(c)
		if got := string(rc.Response.Header.Peek("X-User")); got != user {
			t.Errorf("X-User = %q, want %q", got, user)
		}
		if got := string(rc.Response.Body()); got != "body:2" {
			t.Errorf("body = %q", got)
		}
		if want := "msg=\"user=" + user + " n=2 list=a,b ok=true\""; !strings.Contains(lb.String(), want) {
			t.Errorf("log = %s\nwant %s", lb, want)
		}
		sdk.ReleaseCtx(c)
	}
}

func TestSharedUnconvertible(t *testing.T) {
	f := newFilter(t, `function access() weir.ctx.shared.fn = print end`, nil, nil)
	_, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	_, err := f.OnRequest(c)
	want := "lua: access: weir.ctx.shared keeps only nil, booleans, numbers, strings and tables of them: fn: a function cannot be converted (only nil, booleans, numbers, strings and tables)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

func TestLog(t *testing.T) {
	lb := &logBuf{}
	f := newFilter(t, `
function access()
  weir.log.info("info ", 1, " ", true)
  weir.log.warn("careful")
  weir.log.err("broken: ", nil)
  print("a", "b")
end
function log()
  weir.log.info("status ", weir.response.get_status())
end`, nil, lb)
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
	rc.Response.SetStatusCode(418)
	f.(sdk.LogFilter).OnLog(c)
	out := lb.String()
	for _, want := range []string{
		`level=INFO msg="info 1 true" plugin=lua route=r script=source request_id=req-1 phase=access`,
		`level=WARN msg=careful`,
		`level=ERROR msg="broken: nil"`,
		`level=INFO msg="a\tb"`,
		`level=INFO msg="status 418" plugin=lua route=r script=source request_id=req-1 phase=log`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s\n%s", want, out)
		}
	}
}

// TestLogPhaseError: an error in log is logged, not returned.
func TestLogPhaseError(t *testing.T) {
	lb := &logBuf{}
	f := newFilter(t, `function log() error("log failed") end`, nil, lb)
	_, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	before := base(f).errors[phaseLog].Get()
	f.(sdk.LogFilter).OnLog(c)
	if !strings.Contains(lb.String(), `level=ERROR msg="lua log phase failed"`) || !strings.Contains(lb.String(), "source:1: log failed") {
		t.Fatalf("log = %s", lb)
	}
	if base(f).errors[phaseLog].Get()-before != 1 {
		t.Fatal("error not counted")
	}
}

// TestErrorDiscardsState: a state that failed is closed, and the next call
// gets a fresh one.
func TestErrorDiscardsState(t *testing.T) {
	f := newFilter(t, `
local calls = 0
function access()
  calls = calls + 1
  weir.response.set_header("X-Calls", calls)
  if weir.request.get_header("X-Fail") then error("fail") end
end`, map[string]any{"pool_size": 1}, nil)
	p := base(f).pool
	run := func(fail bool) string {
		var hdr []string
		if fail {
			hdr = []string{"X-Fail: 1"}
		}
		rc, c := request("GET", "/", hdr...)
		defer sdk.ReleaseCtx(c)
		_, err := f.OnRequest(c)
		if (err != nil) != fail {
			t.Fatalf("fail=%v: err %v", fail, err)
		}
		c.ApplyResponseHeaders()
		return string(rc.Response.Header.Peek("X-Calls"))
	}
	run(false)
	if got := run(false); got != "2" {
		t.Fatalf("the same state should serve both calls; X-Calls = %s", got)
	}
	run(true)
	if p.idleCount() != 0 || p.created.Load() != 0 {
		t.Fatalf("failed state kept: idle %d created %d", p.idleCount(), p.created.Load())
	}
	if got := run(false); got != "1" {
		t.Fatalf("a fresh state should start over; X-Calls = %s", got)
	}
}

func TestJSONBody(t *testing.T) {
	f := newFilter(t, `function access()
  weir.response.exit(200, {s = "<a&b>", n = 1.5, i = 3, b = false, arr = {"x", {y = 1}}, [7] = "seven"})
end`, nil, nil)
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
	want := `{"7":"seven","arr":["x",{"y":1}],"b":false,"i":3,"n":1.5,"s":"\u003ca\u0026b\u003e"}`
	if got := string(rc.Response.Body()); got != want {
		t.Fatalf("body = %s\nwant   %s", got, want)
	}
	if !bytes.Equal(rc.Response.Header.ContentType(), []byte("application/json")) {
		t.Fatalf("content type %s", rc.Response.Header.ContentType())
	}
}

// TestMetricNames: the counters are registered under the documented names.
func TestMetricNames(t *testing.T) {
	f := newFilter(t, `function access() error("x") end`, nil, nil)
	_, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	before := metrics.GetOrCreateCounter(`weir_lua_errors_total{route="r",phase="access"}`).Get()
	if _, err := f.OnRequest(c); err == nil {
		t.Fatal("no error")
	}
	if got := metrics.GetOrCreateCounter(`weir_lua_errors_total{route="r",phase="access"}`).Get() - before; got != 1 {
		t.Fatalf("weir_lua_errors_total grew by %d", got)
	}
	if base(f).timeouts != metrics.GetOrCreateCounter(`weir_lua_timeouts_total{route="r"}`) {
		t.Fatal("timeouts counter has another name")
	}
	g, err := New(&sdk.Build{}, cfgJSON(t, `function access() end`, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer g.(sdk.Closer).Close()
	if base(g).timeouts != metrics.GetOrCreateCounter(`weir_lua_timeouts_total{route="_global"}`) {
		t.Fatal("a global instance is not labelled _global")
	}
}

// TestReadmeExample runs the README's example script (testdata/tenant.lua
// is a copy of it).
func TestReadmeExample(t *testing.T) {
	lb := &logBuf{}
	f, err := New(build(lb), []byte(`{"file":"testdata/tenant.lua","config":{"header":"X-Tenant","allowed":["acme","globex"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer f.(sdk.Closer).Close()

	rc, c := request("GET", "/orders?tenant=initech")
	if st := access(t, f, c); st != sdk.Stop || rc.Response.StatusCode() != 403 || string(rc.Response.Body()) != `{"error":"unknown tenant"}` {
		t.Fatalf("unknown tenant: %v %d %s", st, rc.Response.StatusCode(), rc.Response.Body())
	}
	sdk.ReleaseCtx(c)

	rc, c = request("GET", "/orders?tenant=acme&page=2")
	defer sdk.ReleaseCtx(c)
	if st := access(t, f, c); st != sdk.Continue {
		t.Fatalf("acme: %v", st)
	}
	if string(rc.Request.Header.Peek("X-Tenant")) != "acme" || string(rc.Request.URI().QueryString()) != "page=2" {
		t.Fatalf("upstream request: %s", rc.Request.Header.String())
	}
	rc.Response.SetStatusCode(503)
	if err := f.(sdk.ResponseFilter).OnResponse(c); err != nil {
		t.Fatal(err)
	}
	f.(sdk.LogFilter).OnLog(c)
	if string(rc.Response.Header.Peek("X-Served-Tenant")) != "acme" || !strings.Contains(lb.String(), `level=WARN msg="tenant acme got 503"`) {
		t.Fatalf("response %s\nlog %s", rc.Response.Header.String(), lb)
	}
}

// weir.log.field adds to the request's access-log line; any value goes
// (the access log escapes it).
func TestLogField(t *testing.T) {
	f := newFilter(t, `
function access()
  weir.log.field("tenant", "blue")
  weir.log.field("note", "a \"quoted\"\r\nline")
  weir.log.field("tenant", "green")
end`, nil, nil)
	_, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
	if got := string(c.LogField("tenant")); got != "green" {
		t.Errorf("tenant = %q", got)
	}
	if got := string(c.LogField("note")); got != "a \"quoted\"\r\nline" {
		t.Errorf("note = %q", got)
	}
}
