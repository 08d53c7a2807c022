package lua

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/weirgw/weir/sdk"
)

func kongFilter(t testing.TB, name string, conf map[string]any) (sdk.Filter, error) {
	t.Helper()
	m := map[string]any{"kong_plugin": "testdata/kong/" + name, "timeout": "1s"}
	if conf != nil {
		m["config"] = conf
	}
	raw, _ := json.Marshal(m)
	f, err := New(build(nil), raw)
	if err == nil {
		t.Cleanup(func() { f.(sdk.Closer).Close() })
	}
	return f, err
}

// TestKongSchema: schema.lua's defaults and checks apply to config, and a
// bad config is a config error naming the field.
func TestKongSchema(t *testing.T) {
	for _, tt := range []struct {
		name string
		conf map[string]any
		err  string
	}{
		{"terminator", map[string]any{"status_code": 700}, "config.status_code: value should be between 100 and 599"},
		{"terminator", map[string]any{"status_code": "x"}, "config.status_code: expected an integer"},
		{"terminator", map[string]any{"message": "m", "body": "b"}, "config: message cannot be used with content_type or body"},
		{"terminator", map[string]any{"trigger": "X-T"}, "config: trigger can only be used with echo"},
		{"terminator", map[string]any{"nope": 1}, "config.nope: unknown field"},
		{"correlation", map[string]any{"generator": "x"}, "config.generator: expected one of: uuid, uuid#counter, tracker"},
		{"multi", nil, "config.secret: required field missing"},
		{"absent", nil, "no such file or directory"},
	} {
		_, err := kongFilter(t, tt.name, tt.conf)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s %v: error = %v, want it to mention %q", tt.name, tt.conf, err, tt.err)
		}
	}
}

// TestKongTerminator: the defaults reach the handler (503 and its message).
func TestKongTerminator(t *testing.T) {
	f, err := kongFilter(t, "terminator", nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	if st := access(t, f, c); st != sdk.Stop {
		t.Fatalf("status %v, want Stop", st)
	}
	if rc.Response.StatusCode() != 503 || string(rc.Response.Body()) != `{"message":"Service unavailable"}` {
		t.Fatalf("answer %d %s", rc.Response.StatusCode(), rc.Response.Body())
	}
}

// TestKongNgx: ngx.re on Go's regexp, cjson, base64/md5/hmac and
// encode_args behave as OpenResty's for what they support.
func TestKongNgx(t *testing.T) {
	dir := t.TempDir() + "/ngxcheck"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	handler := `
local function eq(a, b, what)
  if a ~= b then error(what .. ": got " .. tostring(a) .. ", want " .. tostring(b), 2) end
end
local H = {PRIORITY = 1, VERSION = "1"}
function H:access(conf)
  local m = ngx.re.match("user=bob id=42", [[(?<key>\w+)=(\d+)]])
  eq(m[0], "id=42", "match whole") eq(m[2], "42", "match group") eq(m.key, "id", "match named")
  eq(ngx.re.match("abc", "x"), nil, "no match")
  eq(ngx.re.match("ABC", "b", "i")[0], "B", "option i")
  eq(ngx.re.match("xab", "ab", "a"), nil, "option a anchors")
  local from, to = ngx.re.find("hello world", "wor")
  eq(from, 7, "find from") eq(to, 9, "find to")
  local ctx = {pos = 3}
  eq(ngx.re.find("abab", "ab", "jo", ctx), 3, "find ctx.pos")
  local s, n = ngx.re.gsub("a1b22c333", [[\d+]], "<$0>")
  eq(s, "a<1>b<22>c<333>", "gsub $0") eq(n, 3, "gsub count")
  eq(ngx.re.gsub("john smith", [[(\w+) (\w+)]], "$2x $1"), "smithx john", "gsub $2x")
  eq(ngx.re.gsub("a-b", "-", "$$"), "a$b", "gsub $$")
  eq(ngx.re.gsub("ab", "[ab]", function(m) return m[0]:upper() end), "AB", "gsub function")
  eq(ngx.re.sub("aaa", "a", "b"), "baa", "sub once")
  local seen = {}
  for m in ngx.re.gmatch("k1=v1,k2=v2", [[(\w+)=(\w+)]]) do seen[#seen + 1] = m[1] .. m[2] end
  eq(table.concat(seen, ";"), "k1v1;k2v2", "gmatch")
  local r, err = ngx.re.match("x", "(?=x)")
  eq(r, nil, "lookahead refused") assert(err:find("failed to compile regex"), err)
  local cjson = require "cjson.safe"
  local v = cjson.decode('{"a":[1,2,null],"b":"x"}')
  eq(v.a[2], 2, "decode array") eq(v.a[3], cjson.null, "decode null") eq(v.b, "x", "decode string")
  eq(cjson.encode({a = cjson.null}), '{"a":null}', "encode null")
  eq(select(2, cjson.decode("{bad")) ~= nil, true, "safe decode error")
  eq(ngx.encode_base64("hello"), "aGVsbG8=", "base64") eq(ngx.decode_base64("aGVsbG8="), "hello", "unbase64")
  eq(ngx.md5("abc"), "900150983cd24fb0d6963f7d28e17f72", "md5")
  eq(ngx.encode_base64(ngx.hmac_sha1("key", "The quick brown fox jumps over the lazy dog")), "3nybhbi3iqa8ino29wqQcBydtNk=", "hmac_sha1")
  eq(ngx.encode_args({b = "x y", a = true}), "a&b=x%20y", "encode_args")
  eq(#kong.node.get_id(), 36, "node id") eq(#kong.tools.uuid(), 36, "uuid")
  eq(ngx.var.http_x_api_key, "k", "ngx.var.http_*") eq(ngx.var.request_uri, "/users/7?x=1", "request_uri")
  eq(kong.request.get_query_arg("x"), "1", "query arg")
  kong.ctx.plugin.n = 1 ngx.ctx.m = 2
  eq(kong.ctx.plugin.n + ngx.ctx.m, 3, "per-request tables")
  assert(not pcall(function() kong.request.get_header = nil end), "kong is read-only")
  assert(not pcall(function() ngx.var.uri = "/x" end), "ngx.var is read-only")
  assert(not pcall(require, "resty.http"), "unknown module")
end
return H`
	if err := os.WriteFile(dir+"/handler.lua", []byte(handler), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"kong_plugin": dir, "timeout": "1s"})
	f, err := New(build(nil), raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.(sdk.Closer).Close()
	_, c := request("GET", "/users/7?x=1", "X-Api-Key: k")
	defer sdk.ReleaseCtx(c)
	access(t, f, c)
}
