package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The Lua sandbox's limits, through the real binary: every case here ran
// for seconds to minutes, took hundreds of MB, or leaked between requests
// before the budget of instructions and memory (plugins/lua/deadline.go).

func luaRoute(name, extra, src string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    paths: [\"=/%s\"]\n    service: a\n    plugins:\n      - name: lua\n        config:\n%s          source: |\n", name, name, extra)
	for _, line := range strings.Split(strings.TrimSpace(src), "\n") {
		b.WriteString("            " + line + "\n")
	}
	return b.String()
}

func luaGateway(t *testing.T, routes ...string) *weir {
	t.Helper()
	up := serveFast(t, func(rc *fasthttp.RequestCtx) { rc.SetBodyString("upstream") })
	return startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://`+up+`"}]}]
routes:
`+strings.Join(routes, ""))
}

// getWithin is one GET that must be answered within limit.
func getWithin(t *testing.T, w *weir, uri string, hdr map[string]string, limit time.Duration) (int, string, time.Duration) {
	t.Helper()
	c := newClient(w.Addr)
	c.ReadTimeout = limit
	start := time.Now()
	code, body, _ := get(t, c, uri, hdr)
	return code, body, time.Since(start)
}

// TestLuaSandboxTime: the budget holds inside one library call. A gsub
// with 60 000 matches is linear (gopher-lua's copied the whole string per
// match: 4.6 s), and a backtracking pattern is cut by the budget (it ran
// past a minute).
func TestLuaSandboxTime(t *testing.T) {
	w := luaGateway(t,
		luaRoute("gsub", "", `
function access()
  local s = string.rep("a,", 60000)
  local r, n = s:gsub(",", ";")
  weir.response.exit(200, n .. " " .. #r .. " " .. r:sub(1, 6))
end`),
		luaRoute("backtrack", "", `
function access()
  local s = string.rep("a", 600)
  weir.response.exit(200, tostring(s:find(".-.-.-.-.-b")))
end`))

	code, body, took := getWithin(t, w, "/gsub", nil, 5*time.Second)
	if code != 200 || body != "60000 120000 a;a;a;" {
		t.Fatalf("gsub: %d %q", code, body)
	}
	if took > 2*time.Second {
		t.Fatalf("gsub took %s", took)
	}
	code, body, took = getWithin(t, w, "/backtrack", nil, 5*time.Second)
	if code != 500 || took > 3*time.Second {
		t.Fatalf("backtracking find: %d %q after %s, want a 500 from the budget", code, body, took)
	}
	if !waitUntil(2*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(w.Logs(), "used up the instruction budget of its 50ms timeout")
	}) {
		t.Fatal("no log line names the instruction budget")
	}
}

// TestLuaSandboxMemory: strings built by table.concat, the .. operator and
// a self-referencing table sent by weir.response.exit are counted against
// memory_limit_mb, and a table that holds another twice at each of 30
// levels (2^30 values once walked) is refused by weir.response.exit: each
// request fails with a 500 and the process stays small (they took 256 MB,
// 256 MB and GBs before).
func TestLuaSandboxMemory(t *testing.T) {
	w := luaGateway(t,
		luaRoute("tconcat", "", `
function access()
  local big = string.rep("x", 4 * 1024 * 1024)
  local t = {}
  for i = 1, 64 do t[i] = big end
  weir.response.exit(200, #table.concat(t))
end`),
		luaRoute("doubling", "", `
function access()
  local s = "x"
  for i = 1, 28 do s = s .. s end
  weir.response.exit(200, #s)
end`),
		luaRoute("selfref", "", `
function access()
  local t = {"x"}
  for i = 1, 30 do t = {t, t} end -- 30 deep, 2^30 values when walked
  weir.response.exit(200, t)
end`))
	for _, path := range []string{"/tconcat", "/doubling", "/selfref"} {
		code, body, _ := getWithin(t, w, path, nil, 5*time.Second)
		if code != 500 {
			t.Fatalf("%s: %d %q, want 500", path, code, body)
		}
	}
	// The failure is logged as the 500 is sent: wait for the last line.
	waitUntil(2*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(w.Logs(), "the tables hold more than 100000 values")
	})
	logs := w.Logs()
	if n := strings.Count(logs, "went over its memory limit of 32 MiB"); n != 2 {
		t.Errorf("%d memory-limit log lines, want 2 (tconcat, doubling)", n)
	}
	if !strings.Contains(logs, "the tables hold more than 100000 values") {
		t.Error("no log line for the 2^30-value table")
	}
	if rss := w.peakRSS(); rss > 150<<20 {
		t.Fatalf("peak RSS %d MiB, want under 150", rss>>20)
	}
	if v := w.metric(`weir_lua_memory_limit_total{route="doubling"}`); v != 1 {
		t.Errorf("weir_lua_memory_limit_total{route=doubling} = %v, want 1", v)
	}
}

// TestLuaSandboxTableMemory: a table grown within the time budget counts
// against memory_limit_mb: the call fails with a 500 and a log line, and
// the process stays small. Before, only the instruction budget bounded
// it: this call ran to the end, 10 million values (hundreds of MiB).
func TestLuaSandboxTableMemory(t *testing.T) {
	w := luaGateway(t, luaRoute("table", "          timeout: 5s\n          memory_limit_mb: 16\n", `
function access()
  local t = {}
  for i = 1, 1e7 do t[i] = i end
  weir.response.exit(200, #t)
end`))
	code, body, _ := getWithin(t, w, "/table", nil, 30*time.Second)
	if code != 500 {
		t.Fatalf("table: %d %q, want 500 from memory_limit_mb", code, body)
	}
	if !waitUntil(2*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(w.Logs(), "went over its memory limit of 16 MiB (memory_limit_mb)")
	}) {
		t.Fatalf("no log line names the memory limit\n%s", w.Logs())
	}
	if v := w.metric(`weir_lua_memory_limit_total{route="table"}`); v != 1 {
		t.Errorf("weir_lua_memory_limit_total{route=table} = %v, want 1", v)
	}
	if rss := w.peakRSS(); rss > 150<<20 {
		t.Errorf("peak RSS %d MiB, want under 150", rss>>20)
	}
}

// TestLuaSandboxFrozen: a request cannot unfreeze the globals or replace
// a PDK or library function for later requests on the same VM (pool_size
// 1, so the second request runs on the VM the first one tried to change).
func TestLuaSandboxFrozen(t *testing.T) {
	w := luaGateway(t, luaRoute("frozen", "          pool_size: 1\n", `
function access()
  if weir.request.get_header("X-Evil") then
    pcall(function() getmetatable(_G).__newindex = nil end)
    pcall(function() setmetatable(_G, nil) end)
    pcall(function() weir.request.get_header = function() return "evil" end end)
    pcall(rawset, weir.request, "get_header", function() return "evil" end)
    pcall(function() string.upper = function() return "evil" end end)
    pcall(function() getmetatable("").__index.upper = function() return "evil" end end)
    pcall(function() leaked = "yes" end)
    pcall(rawset, _G, "leaked", "yes")
    pcall(function() weir = nil end)
    return
  end
  weir.response.exit(200, weir.request.get_header("X-Name") .. " " .. ("a"):upper() .. " " .. tostring(leaked))
end`))
	if code, body, _ := getWithin(t, w, "/frozen", map[string]string{"X-Evil": "1"}, 5*time.Second); code != 200 || body != "upstream" {
		t.Fatalf("evil request: %d %q", code, body)
	}
	code, body, _ := getWithin(t, w, "/frozen", map[string]string{"X-Name": "bob"}, 5*time.Second)
	if code != 200 || body != "bob A nil" {
		t.Fatalf("next request: %d %q, want 200 \"bob A nil\"", code, body)
	}
}

// TestLuaSandboxFrozenTableLib: table.insert, table.sort and
// table.remove cannot write into the globals, a library or the PDK for
// later requests on the same VM (pool_size 1); before, they wrote into
// the read-only views' own (per-VM) tables, and the next request read
// weir.request[1] == "x".
func TestLuaSandboxFrozenTableLib(t *testing.T) {
	w := luaGateway(t, luaRoute("frozenlib", "          pool_size: 1\n", `
function access()
  if weir.request.get_header("X-Evil") then
    local refused = 0
    for _, t in ipairs({_G, weir, weir.request, string, table}) do
      if not pcall(table.insert, t, "x") then refused = refused + 1 end
      if not pcall(table.insert, t, 1, "y") then refused = refused + 1 end
      if not pcall(table.sort, t) then refused = refused + 1 end
      if not pcall(table.remove, t) then refused = refused + 1 end
    end
    weir.response.exit(200, "refused " .. refused)
  end
  weir.response.exit(200, tostring(_G[1]) .. " " .. tostring(weir.request[1]) .. " " .. tostring(string[1]) .. " " .. tostring(weir[1]))
end`))
	if code, body, _ := getWithin(t, w, "/frozenlib", map[string]string{"X-Evil": "1"}, 5*time.Second); code != 200 || body != "refused 20" {
		t.Fatalf("evil request: %d %q, want 200 \"refused 20\"", code, body)
	}
	code, body, _ := getWithin(t, w, "/frozenlib", nil, 5*time.Second)
	if code != 200 || body != "nil nil nil nil" {
		t.Fatalf("next request: %d %q, want 200 \"nil nil nil nil\"", code, body)
	}
}

// TestLuaSandboxConf: what a request writes into conf (here: a changed
// value, a new key, an element appended to a nested list) does not reach
// the next request on the same VM (pool_size 1); before, each request
// saw the previous one's writes.
func TestLuaSandboxConf(t *testing.T) {
	w := luaGateway(t, luaRoute("conf", "          pool_size: 1\n          config: {n: 1, tags: {list: [a]}}\n", `
function access()
  local seen = conf.n .. " " .. table.concat(conf.tags.list, ",") .. " " .. tostring(conf.extra)
  conf.n = conf.n + 1
  conf.extra = "leaked"
  conf.tags.list[#conf.tags.list + 1] = "x"
  weir.response.exit(200, seen)
end`))
	for i := 0; i < 3; i++ {
		if code, body, _ := getWithin(t, w, "/conf", nil, 5*time.Second); code != 200 || body != "1 a nil" {
			t.Fatalf("request %d: %d %q, want 200 \"1 a nil\" (conf as configured)", i, code, body)
		}
	}
	if v := w.metric(`weir_lua_conf_changed_total{route="conf"}`); v != 3 {
		t.Errorf("weir_lua_conf_changed_total = %v, want 3", v)
	}
	if !strings.Contains(w.Logs(), "the script changed conf in a phase") {
		t.Error("no warning names the change of conf")
	}
}

// TestLuaSandboxLogBounded: a print loop writes at most 64 KiB of log per
// call (33 MB in 50 ms before) and is cut by the budget.
func TestLuaSandboxLogBounded(t *testing.T) {
	w := luaGateway(t, luaRoute("printer", "", `
function access()
  local line = string.rep("x", 1000)
  for i = 1, 1000000 do print(line) end
end`))
	before := len(w.Logs())
	code, _, _ := getWithin(t, w, "/printer", nil, 5*time.Second)
	if code != 500 {
		t.Fatalf("print loop: %d, want 500", code)
	}
	if !waitUntil(2*time.Second, 10*time.Millisecond, func() bool {
		return strings.Contains(w.Logs(), "log output over the limit of one call was dropped")
	}) {
		t.Fatal("no log line says output was dropped")
	}
	if n := len(w.Logs()) - before; n > 256<<10 {
		t.Fatalf("one call wrote %d bytes of log, want under 256 KiB", n)
	}
}

// TestLuaSandboxStarved: a script that is stopped (here the whole process,
// by SIGSTOP, for longer than its timeout) while it runs is not failed for
// it: the limit is its instruction budget, not wall-clock time.
func TestLuaSandboxStarved(t *testing.T) {
	w := luaGateway(t, luaRoute("busy", "          timeout: 1s\n", `
function access()
  weir.log.info("busy script started")
  local x = 0
  for i = 1, 10000000 do x = x + i end
  weir.response.exit(200, "done " .. x)
end`))
	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		c := &fasthttp.HostClient{Addr: w.Addr, ReadTimeout: 20 * time.Second}
		code, body, err := c.GetTimeout(nil, "http://"+w.Addr+"/busy", 20*time.Second)
		if err != nil {
			code = -1
			body = []byte(err.Error())
		}
		done <- answer{code, string(body)}
	}()
	if !waitUntil(5*time.Second, time.Millisecond, func() bool { return strings.Contains(w.Logs(), "busy script started") }) {
		t.Fatal("the script did not start")
	}
	pid := w.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // longer than the 1s timeout, on purpose
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.code != 200 || !strings.HasPrefix(a.body, "done ") {
		t.Fatalf("starved script: %d %q, want 200", a.code, a.body)
	}
}
