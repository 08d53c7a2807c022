package lua

import (
	"strings"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// TestStringLib: the budgeted string functions keep Lua 5.1's results.
func TestStringLib(t *testing.T) {
	f := newFilter(t, `
local function eq(a, b, what)
  if a ~= b then error(what .. ": got " .. tostring(a) .. ", want " .. tostring(b), 2) end
end
function access()
  -- find
  eq(select("#", ("hello world"):find("o w")), 2, "find plain count")
  local s, e = ("hello world"):find("o w") eq(s, 5, "find s") eq(e, 7, "find e")
  local s, e, c = ("key=val"):find("(%w+)=") eq(c, "key", "find capture") eq(e, 4, "find e2")
  eq(("a.b"):find(".", 1, true), 2, "find plain dot")
  eq(("abc"):find("b", -1), nil, "find negative init")
  eq(("abc"):find("", 10), nil, "find init past end")
  eq(("abc"):find("x"), nil, "find none")
  -- match
  eq(("2024-01-02"):match("(%d+)-(%d+)"), "2024", "match first capture")
  eq(select(2, ("2024-01-02"):match("(%d+)-(%d+)")), "01", "match second capture")
  eq(("  trim  "):match("^%s*(.-)%s*$"), "trim", "match trim")
  eq(("abc"):match("()b()"), 2, "match position capture")
  eq(("abc"):match("x"), nil, "match none")
  -- gmatch
  local words = {}
  for w in ("one two  three"):gmatch("%a+") do words[#words + 1] = w end
  eq(table.concat(words, ","), "one,two,three", "gmatch words")
  local kv = {}
  for k, v in ("a=1, b=2"):gmatch("(%w+)=(%w+)") do kv[#kv + 1] = k .. v end
  eq(table.concat(kv), "a1b2", "gmatch pairs")
  local n = 0
  for _ in ("abc"):gmatch("") do n = n + 1 end
  eq(n, 4, "gmatch empty matches")
  -- gsub
  eq(("hello"):gsub("l", "L"), "heLLo", "gsub string")
  eq(select(2, ("hello"):gsub("l", "L")), 2, "gsub count")
  eq(("hello"):gsub("l", "L", 1), "heLlo", "gsub limit")
  eq(("hello world"):gsub("(%w+)", "<%1>"), "<hello> <world>", "gsub capture")
  eq(("abc"):gsub("%w", "%0%0"), "aabbcc", "gsub whole")
  eq(("50%"):gsub("%%", "%%%%"), "50%%", "gsub percent")
  eq(("$name is $age"):gsub("%$(%w+)", {name = "bob", age = 42}), "bob is 42", "gsub table")
  eq(("$x"):gsub("%$(%w+)", {}), "$x", "gsub table miss")
  eq(("abc"):gsub("%w", function(c) return c:upper() .. "." end), "A.B.C.", "gsub function")
  eq(("abc"):gsub("%w", function(c) if c == "b" then return false end return "-" end), "-b-", "gsub function false")
  eq(("abc"):gsub("", "-"), "-a-b-c-", "gsub empty pattern")
  eq(("abc"):gsub("^a", "x"), "xbc", "gsub anchored")
  eq(("x"):gsub("x", 1), "1", "gsub number replacement")
  -- gsub of a literal by a literal (gsubPlain): the same results
  local r, n = ("aaaa"):gsub("aa", "b") eq(r, "bb", "plain overlapping") eq(n, 2, "plain overlapping count")
  r, n = ("aaa"):gsub("aa", "b") eq(r, "ba", "plain left first") eq(n, 1, "plain left first count")
  r, n = ("a,b,,c"):gsub(",", "") eq(r, "abc", "plain to empty") eq(n, 3, "plain to empty count")
  r, n = ("abcabc"):gsub("bc", "XYZ", 1) eq(r, "aXYZabc", "plain limit") eq(n, 1, "plain limit count")
  r, n = ("abc"):gsub("b", "x", 0) eq(r, "abc", "plain limit 0") eq(n, 0, "plain limit 0 count")
  r, n = ("abc"):gsub("b", "x", 5) eq(r, "axc", "plain limit over") eq(n, 1, "plain limit over count")
  r, n = ("abc"):gsub("abcd", "x") eq(r, "abc", "plain longer than s") eq(n, 0, "plain longer count")
  r, n = (""):gsub("a", "x") eq(r, "", "plain empty s") eq(n, 0, "plain empty s count")
  r, n = ("a.b"):gsub("b", "%%") eq(r, "a.%", "replacement with % takes the general path")
  r, n = ("abc"):gsub("[b]", "x", 0) eq(r, "abc", "pattern limit 0") eq(n, 0, "pattern limit 0 count")
  -- one byte for one byte or for a string, dense and with limits: the
  -- same as the general path ("[x]" is a pattern, not a literal)
  for _, s in ipairs({"xxxx", "axxbx", "x", "abc", "xaxax"}) do
    for _, rp in ipairs({"y", "", "yz"}) do
      for _, lim in ipairs({-1, 0, 1, 2, 9}) do
        local a, an, b, bn
        if lim < 0 then
          a, an = s:gsub("x", rp) b, bn = s:gsub("[x]", rp)
        else
          a, an = s:gsub("x", rp, lim) b, bn = s:gsub("[x]", rp, lim)
        end
        eq(a, b, "plain byte " .. s .. "/" .. rp .. "/" .. lim) eq(an, bn, "plain byte count " .. s .. "/" .. rp .. "/" .. lim)
      end
    end
  end
  -- rep, format, upper, lower, reverse, concat, ..
  eq(("ab"):rep(3), "ababab", "rep")
  eq(string.format("%5.2f|%-3s|%d|%%", 3.14159, "a", 7), " 3.14|a  |7|%", "format")
  eq(("MiXeD"):lower() .. ("MiXeD"):upper() .. ("abc"):reverse(), "mixedMIXEDcba", "case")
  eq(table.concat({1, "b", 3}, "-", 2, 3), "b-3", "table.concat range")
  eq(table.concat({}, ","), "", "table.concat empty")
  local tt = {3, 1, 2}
  table.insert(tt, 1, 0) table.insert(tt, 9) eq(table.remove(tt, 1), 0, "remove first")
  table.sort(tt) eq(table.concat(tt, ","), "1,2,3,9", "insert, remove, sort")
  eq("a" .. 1 .. "b" .. 2.5, "a1b2.5", "concat chain")
  local mt = {__concat = function(a, b) return "meta" end}
  eq(setmetatable({}, mt) .. "x", "meta", "concat metamethod")
  local function two() return "p", "q" end
  eq(two() .. "!", "p!", "concat call operand cut to one value")
  eq(select("#", "a" .. two()), 1, "concat one value")
end`, nil, nil)
	_, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
}

// TestStringLibLimits: the calls that used to run long or big are cut,
// with an error naming the limit.
func TestStringLibLimits(t *testing.T) {
	for _, tt := range []struct{ code, err string }{
		{`string.rep("a", 600):find(".-.-.-.-.-b")`, "instruction budget of its 20ms timeout"},
		{`string.format("%99999d", 1)`, "invalid format (width or precision too long)"},
		{`local s = "x" for i = 1, 30 do s = s .. s end`, "memory limit of 1 MiB"},
		{`local t = {} for i = 1, 100 do t[i] = string.rep("x", 65536) end table.concat(t)`, "memory limit of 1 MiB"},
		{`local s = string.rep("ab", 600000) s:gsub("a", "aaaa")`, "memory limit of 1 MiB"},
		{`local s = string.rep("ab", 600000) s:upper()`, "memory limit of 1 MiB"},
		{`local t = {} for i = 1, 1e5 do table.insert(t, 1, i) end`, "instruction budget of its 20ms timeout"},
	} {
		f := newFilter(t, "function access() "+tt.code+" end", map[string]any{"memory_limit_mb": 1, "timeout": "20ms"}, nil)
		_, c := request("GET", "/")
		_, err := f.OnRequest(c)
		sdk.ReleaseCtx(c)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error = %v, want it to mention %q", tt.code, err, tt.err)
		}
	}
}
