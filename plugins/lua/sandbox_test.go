package lua

import (
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/sdk"
)

// TestSandboxEscapes: everything that reaches outside the VM is absent,
// whether used at load time (a config error) or in a phase (a runtime
// error).
func TestSandboxEscapes(t *testing.T) {
	tests := []struct{ code, err string }{
		{`os.execute("touch /tmp/weir-lua-pwned")`, "attempt to index a non-table object(nil) with key 'execute'"},
		{`os.getenv("HOME")`, "attempt to index a non-table object(nil) with key 'getenv'"},
		{`io.open("/etc/passwd")`, "attempt to index a non-table object(nil) with key 'open'"},
		{`io.popen("id")`, "attempt to index a non-table object(nil) with key 'popen'"},
		{`require("os")`, "attempt to call a non-function object"},
		{`load("return 1")`, "attempt to call a non-function object"},
		{`loadstring("return 1")`, "attempt to call a non-function object"},
		{`dofile("/etc/passwd")`, "attempt to call a non-function object"},
		{`loadfile("/etc/passwd")`, "attempt to call a non-function object"},
		{`module("x")`, "attempt to call a non-function object"},
		{`collectgarbage()`, "attempt to call a non-function object"},
		{`getfenv(1)`, "attempt to call a non-function object"},
		{`setfenv(1, {})`, "attempt to call a non-function object"},
		{`newproxy(true)`, "attempt to call a non-function object"},
		{`string.dump(print)`, "attempt to call a non-function object"},
		{`("x"):dump()`, "attempt to call a non-function object"},
		{`getmetatable("").__index.dump(print)`, "attempt to index a non-table object(boolean) with key '__index'"},
		{`debug.getinfo(1)`, "attempt to index a non-table object(nil) with key 'getinfo'"},
		{`package.loadlib("x", "y")`, "attempt to index a non-table object(nil) with key 'loadlib'"},
		{`coroutine.create(print)`, "attempt to index a non-table object(nil) with key 'create'"},
		{`channel.make()`, "attempt to index a non-table object(nil) with key 'make'"},
		{`setmetatable("", {__index = {}})`, "bad argument #1 to setmetatable (table expected, got string)"},
		{`setmetatable(1, {__index = {}})`, "bad argument #1 to setmetatable (table expected, got number)"},
		{`setmetatable(print, {})`, "bad argument #1 to setmetatable (table expected, got function)"},
		{`string.rep("x", 1e9)`, "string.rep: the result would exceed 4194304 bytes"},
		{`("ab"):rep(3e6)`, "string.rep: the result would exceed 4194304 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			// In a phase: a runtime error.
			f := newFilter(t, "function access()\n"+tt.code+"\nend", nil, nil)
			_, c := request("GET", "/")
			defer sdk.ReleaseCtx(c)
			_, err := f.OnRequest(c)
			if want := "lua: access: source:2: " + tt.err; err == nil || err.Error() != want {
				t.Fatalf("run: error = %v\nwant          %s", err, want)
			}
			// At the top level: a config error.
			_, err = New(build(nil), cfgJSON(t, tt.code+"\nfunction access() end", nil))
			if want := "running the script's top level: source:1: " + tt.err; err == nil || err.Error() != want {
				t.Fatalf("load: error = %v\nwant           %s", err, want)
			}
		})
	}
}

// TestSandboxAllowed: the safe libraries work.
func TestSandboxAllowed(t *testing.T) {
	f := newFilter(t, `
function access()
  assert(string.format("%05d", 42) == "00042")
  assert(("a,b,c"):find(",", 1, true) == 2)
  assert(select("#", string.gsub("hello", "l", "L")) == 2)
  assert(table.concat({1, 2, 3}, "-") == "1-2-3")
  assert(math.floor(2.7) == 2 and math.max(1, 5) == 5)
  assert(tonumber("10") == 10 and tostring(nil) == "nil")
  assert(("x"):rep(3) == "xxx" and string.rep("ab", 0) == "")
  local ok, err = pcall(error, "e")
  assert(not ok and err:find("e$"))
  local t = setmetatable({}, {__index = function() return 1 end})
  assert(t.anything == 1)
  assert(not pcall(rawset, _G, "per_state", true)) -- globals are read-only, even raw
  assert(not pcall(table.insert, weir.request, "x") and weir.request[1] == nil) -- and to the table library
  assert(type(weir.request.set_header) == "function" and next(weir.request) ~= nil) -- read as tables
  assert(type(os) == "nil" and type(io) == "nil")
end`, nil, nil)
	_, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
}

// TestTimeout: an endless loop is cut by the timeout, counted, and the
// state is discarded (a fresh one serves the next request).
func TestTimeout(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"while true", `while true do end`},
		{"loop inside pcall", `while true do pcall(function() while true do end end) end`},
		{"recursion through pcall", `local function f() while true do pcall(f) end end f()`},
		{"growing table", `local t = {} local i = 0 while true do i = i + 1 t[i] = i end`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := `function access()
  if weir.request.get_header("X-Loop") then ` + tt.body + ` end
  weir.request.set_header("X-Ok", "1")
end`
			// 5ms: a budget of 500 000 instructions, spent well within the
			// 1s wall-clock backstop even on a loaded machine.
			f := newFilter(t, src, map[string]any{"timeout": "5ms", "pool_size": 1}, nil)
			b := base(f)
			before := b.timeouts.Get()
			beforeErr := b.errors[phaseAccess].Get()
			_, c := request("GET", "/", "X-Loop: 1")
			start := time.Now()
			_, err := f.OnRequest(c)
			took := time.Since(start)
			sdk.ReleaseCtx(c)
			want := "lua: access: the script used up the instruction budget of its 5ms timeout"
			if raceEnabled && err != nil && strings.Contains(err.Error(), "of wall-clock time") {
				// Under -race a VM instruction is 5-10 times slower: the
				// wall-clock backstop may come before the budget is spent.
				want = err.Error()
			}
			if err == nil || err.Error() != want {
				t.Fatalf("error = %v", err)
			}
			if limit := 2 * time.Second; took > limit && !(raceEnabled && took < 3*limit) {
				t.Fatalf("the call took %s", took)
			}
			if b.timeouts.Get()-before != 1 || b.errors[phaseAccess].Get()-beforeErr != 1 {
				t.Fatalf("timeouts +%d errors +%d, want +1 +1", b.timeouts.Get()-before, b.errors[phaseAccess].Get()-beforeErr)
			}
			if b.pool.idleCount() != 0 || b.pool.created.Load() != 0 {
				t.Fatalf("the timed-out state was kept: idle %d created %d", b.pool.idleCount(), b.pool.created.Load())
			}
			rc, c := request("GET", "/")
			defer sdk.ReleaseCtx(c)
			access(t, f, c)
			if string(rc.Request.Header.Peek("X-Ok")) != "1" {
				t.Fatal("the next request did not run")
			}
		})
	}
}

// TestTimeoutHeaderThenBody: a header_filter that times out fails the
// response phase without running body_filter on the dead state.
func TestTimeoutHeaderThenBody(t *testing.T) {
	f := newFilter(t, `
function header_filter() while true do end end
function body_filter(b) return "changed" end`, map[string]any{"timeout": "10ms"}, nil)
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	rc.Response.SetBodyString("orig")
	err := f.(sdk.ResponseFilter).OnResponse(c)
	want := "lua: header_filter: the script used up the instruction budget of its 10ms timeout"
	if raceEnabled && err != nil && strings.Contains(err.Error(), "of wall-clock time") {
		want = err.Error() // -race: the backstop may come first
	}
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v", err)
	}
	if string(rc.Response.Body()) != "orig" {
		t.Fatalf("body_filter ran: %q", rc.Response.Body())
	}
}

// TestStackLimits: runaway recursion and huge multiple returns end in an
// error, not a crash, thanks to the call-stack and registry limits.
func TestStackLimits(t *testing.T) {
	for _, tt := range []struct{ code, err string }{
		{`local function f(n) return f(n + 1) + 1 end f(1)`, "stack overflow"},
		{`return unpack({}, 1, 200000)`, "registry overflow"},
	} {
		// A generous timeout: these are cut by the limits, not by time.
		f := newFilter(t, "function access() "+tt.code+" end", map[string]any{"timeout": "10s"}, nil)
		_, c := request("GET", "/")
		_, err := f.OnRequest(c)
		sdk.ReleaseCtx(c)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error = %v, want it to mention %q", tt.code, err, tt.err)
		}
	}
}

// TestGlobalsDoNotLeak: a request cannot leave data in globals for the
// next one (new globals are refused after load).
func TestGlobalsDoNotLeak(t *testing.T) {
	f := newFilter(t, `
function access()
  if weir.request.get_header("X-Set") then leaked = "yes" end
  assert(leaked == nil)
end`, map[string]any{"pool_size": 1}, nil)
	_, c := request("GET", "/", "X-Set: 1")
	if _, err := f.OnRequest(c); err == nil || !strings.Contains(err.Error(), `assignment to global "leaked"`) {
		t.Fatalf("error = %v", err)
	}
	sdk.ReleaseCtx(c)
	_, c = request("GET", "/")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
}
