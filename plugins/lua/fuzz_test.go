package lua

import (
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/httpsyntax"
	"github.com/weirgw/weir/sdk"
)

// specialHeaders are names fasthttp parses or rewrites on Set, so a value
// read back may legitimately differ from the one set.
var specialHeaders = []string{"Host", "Content-Type", "User-Agent", "Cookie", "Set-Cookie", "Connection", "Trailer", "Server", "Date", "Accept-Encoding"}

func isSpecial(name string) bool {
	for _, s := range specialHeaders {
		if strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

// FuzzHeaders feeds arbitrary header names and values (from the client or
// computed by a script) through get_header and set_header, on the request
// and (deferred) on the response. A set succeeds exactly when the name is a
// token other than the framing headers and the value has no control
// characters; a value read back is the value set; and whatever is set, the
// serialized header block parses back without any header the script did
// not name (no CR/LF injection).
func FuzzHeaders(f *testing.F) {
	for _, s := range [][2]string{
		{"X-A", "v"}, {"X-A", ""}, {"X A", "v"}, {"", "v"}, {"X-A", "a\r\nX-Injected: 1"},
		{"X-A", "a\nb"}, {"X-A", "a\x00b"}, {"X-A", "tab\there"}, {"X-A", " padded "},
		{"Content-Length", "0"}, {"transfer-encoding", "chunked"}, {"X-Ü", "v"}, {"X-A", "ü\xff"},
		{"Host", "evil.example"}, {"Cookie", "a=b; c=d"}, {"X-A\r\nX-B", "v"}, {"x-a", "\x7f"},
	} {
		f.Add(s[0], s[1])
	}
	flt := newFilter(f, `
function access()
  local s = weir.ctx.shared
  s.before = weir.request.get_header(s.name)
  s.ok = pcall(weir.request.set_header, s.name, s.value)
  if s.ok then s.got = weir.request.get_header(s.name) end
  s.resp_ok = pcall(weir.response.set_header, s.name, s.value)
end`, nil, nil)
	key := base(flt)
	f.Fuzz(func(t *testing.T, name, value string) {
		rc, c := request("GET", "/", "Host: example.com", "X-Client: c")
		defer sdk.ReleaseCtx(c)
		c.SetValue(key, map[string]any{"name": name, "value": value})
		if _, err := flt.OnRequest(c); err != nil {
			t.Fatal(err)
		}
		s := c.Value(key).(map[string]any)
		want := httpsyntax.IsToken(name) && !framingHeader(name) && httpsyntax.ValidFieldValue(value)
		if s["ok"] != want || s["resp_ok"] != want {
			t.Fatalf("set_header(%q, %q): request ok %v, response ok %v, want %v", name, value, s["ok"], s["resp_ok"], want)
		}
		if want && !isSpecial(name) && s["got"] != value {
			t.Fatalf("set_header(%q, %q) then get_header = %q", name, value, s["got"])
		}
		allowed := map[string]bool{"x-client": true, "host": true, strings.ToLower(name): true}
		checkBlock := func(what string, block []byte, parse func([]byte) (map[string]bool, error)) {
			names, err := parse(block)
			if err != nil {
				t.Fatalf("%s header block does not parse after set_header(%q, %q): %v\n%q", what, name, value, err, block)
			}
			for n := range names {
				// What fasthttp itself adds when serializing or re-reading
				// a header block (a response without a length reads as
				// Connection: close) is not the script's doing.
				switch n {
				case "content-type", "content-length", "date", "server", "user-agent", "connection":
					continue
				}
				if !allowed[n] {
					t.Fatalf("%s gained header %q after set_header(%q, %q)\n%q", what, n, name, value, block)
				}
			}
		}
		checkBlock("request", rc.Request.Header.Header(), func(b []byte) (map[string]bool, error) {
			var h fasthttp.RequestHeader
			if err := h.Read(bufioReader(b)); err != nil {
				return nil, err
			}
			return headerNames(h.All()), nil
		})
		c.ApplyResponseHeaders()
		checkBlock("response", rc.Response.Header.Header(), func(b []byte) (map[string]bool, error) {
			var h fasthttp.ResponseHeader
			if err := h.Read(bufioReader(b)); err != nil {
				return nil, err
			}
			return headerNames(h.All()), nil
		})
	})
}

// FuzzCompile feeds arbitrary script sources to the compiler: it must
// return a prototype or an error naming a line, never panic.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"function access() end", "x x", "local s = 'abc", "function f(", "goto x", "break",
		"return return", "--[[ unclosed", "a = {", "local t = {1, 2, [3] = 4}\nreturn #t",
		"for i = 1, 10 do end", "local a <const> = 1", "::l:: goto l", "\x00", "a.b.c:d(e)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		proto, err := compile(src, "fuzz.lua")
		if (proto == nil) == (err == nil) {
			t.Fatalf("proto %v err %v", proto, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.lua") {
			t.Fatalf("error does not name the chunk: %v", err)
		}
	})
}

func headerNames(all func(func([]byte, []byte) bool)) map[string]bool {
	m := map[string]bool{}
	for k := range all {
		m[string(bytes.ToLower(k))] = true
	}
	return m
}
