package cors

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

func mustNew(t testing.TB, route, cfg string) *filter {
	t.Helper()
	f, err := New(&sdk.Build{Route: route, Consumers: sdk.NewConsumers(nil)}, json.RawMessage(cfg))
	if err != nil {
		t.Fatalf("New(%s): %v", cfg, err)
	}
	return f.(*filter)
}

func TestConfig(t *testing.T) {
	tests := []struct{ name, cfg, err string }{
		{"any", `{"origins":["*"]}`, ""},
		{"exact", `{"origins":["https://app.example.com","http://localhost:3000"]}`, ""},
		{"wildcards", `{"origins":["https://*.example.com","*.example.org","http://*.dev.test:*"]}`, ""},
		{"ipv6 and null", `{"origins":["http://[::1]:8080","null"]}`, ""},
		{"everything", `{"origins":["https://a.example"],"methods":["GET","POST"],"headers":["Content-Type","X-Token"],"exposed_headers":["X-Total"],"credentials":true,"max_age":600,"preflight_continue":false}`, ""},
		{"max_age duration", `{"origins":["*"],"max_age":"2h"}`, ""},
		{"star lists without credentials", `{"origins":["*"],"methods":["*"],"headers":["*"],"exposed_headers":["*"]}`, ""},
		{"no origins", `{}`, `origins must list at least one origin, such as https://app.example.com ("*" allows any)`},
		{"no config", ``, `origins must list at least one origin, such as https://app.example.com ("*" allows any)`},
		{"unknown key", `{"origins":["*"],"allow_origins":["x"]}`, `unknown field "allow_origins"`},
		{"origins not a list", `{"origins":"*"}`, "origins: expected []string, got string"},
		{"star with others", `{"origins":["https://a.example","*"]}`, `origins[1]: "*" allows every origin; remove the other entries or the "*"`},
		{"star with credentials", `{"origins":["*"],"credentials":true}`, `credentials cannot be combined with origins "*"; list the allowed origins`},
		{"trailing slash", `{"origins":["https://app.example.com/"]}`, `origins[0]: "https://app.example.com/" has a path; an origin is scheme://host[:port] with no trailing slash`},
		{"no scheme", `{"origins":["app.example.com"]}`, `origins[0]: "app.example.com" has no scheme; write https://app.example.com`},
		{"bad scheme", `{"origins":["1http://a.example"]}`, `origins[0]: "1http://a.example" has an invalid scheme; write scheme://host[:port], https://*.example.com or *.example.com`},
		{"bad port", `{"origins":["https://a.example:99999"]}`, `origins[0]: "https://a.example:99999" has an invalid port; write scheme://host[:port], https://*.example.com or *.example.com`},
		{"empty host", `{"origins":["https://"]}`, `origins[0]: "https://" is not an origin; write scheme://host[:port], https://*.example.com or *.example.com`},
		{"bad host", `{"origins":["https://a b.example"]}`, `origins[0]: "https://a b.example" is not an origin; write scheme://host[:port], https://*.example.com or *.example.com`},
		{"inner wildcard", `{"origins":["https://app.*.example"]}`, `origins[0]: "https://app.*.example": only a leading "*." wildcard is supported`},
		{"partial wildcard", `{"origins":["https://*app.example"]}`, `origins[0]: "https://*app.example": a wildcard must be a whole leading label, as in *.example.com`},
		{"empty methods", `{"origins":["*"],"methods":[]}`, "methods must not be empty; omit it for the default (GET, HEAD, PUT, PATCH, POST, DELETE)"},
		{"bad method", `{"origins":["*"],"methods":["GET","PO ST"]}`, `methods[1]: "PO ST" is not a valid name`},
		{"bad header", `{"origins":["*"],"headers":["X-Ok","X:Bad"]}`, `headers[1]: "X:Bad" is not a valid name`},
		{"bad exposed header", `{"origins":["*"],"exposed_headers":[""]}`, `exposed_headers[0]: "" is not a valid name`},
		{"star method with credentials", `{"origins":["https://a.example"],"credentials":true,"methods":["*"]}`, `methods[0]: "*" is not a wildcard when credentials is true (browsers take it literally); list the names`},
		{"star header with credentials", `{"origins":["https://a.example"],"credentials":true,"headers":["*"]}`, `headers[0]: "*" is not a wildcard when credentials is true (browsers take it literally); list the names`},
		{"negative max_age", `{"origins":["*"],"max_age":-1}`, "max_age must be >= 0"},
		{"fractional max_age", `{"origins":["*"],"max_age":"1.5s"}`, "max_age 1.5s is not a whole number of seconds"},
		{"bad max_age string", `{"origins":["*"],"max_age":"soon"}`, `max_age: "soon" is not a duration; write seconds (600) or a duration ("10m")`},
		{"bad max_age number", `{"origins":["*"],"max_age":1.5}`, `max_age: 1.5 is not a number of seconds; write seconds (600) or a duration ("10m")`},
		// Every error in one run.
		{"every error", `{"origins":["app.example.com","https://*app.example"],"methods":["PO ST"],"headers":["X:Bad"],"max_age":-1}`,
			`origins[0]: "app.example.com" has no scheme; write https://app.example.com` + "\n" +
				`origins[1]: "https://*app.example": a wildcard must be a whole leading label, as in *.example.com` + "\n" +
				`methods[0]: "PO ST" is not a valid name` + "\n" +
				`headers[0]: "X:Bad" is not a valid name` + "\n" +
				"max_age must be >= 0"},
		{"every wrong key", `{"origins":"*","credentials":"yes","max_age":"soon"}`,
			"origins: expected []string, got string\n" +
				"credentials: expected bool, got string\n" +
				`max_age: "soon" is not a duration; write seconds (600) or a duration ("10m")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(&sdk.Build{Route: "r"}, json.RawMessage(tt.cfg))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("error = %q, want %q", got, tt.err)
			}
		})
	}
}

func TestOriginMatching(t *testing.T) {
	tests := []struct {
		pattern, origin string
		want            bool
	}{
		{"https://app.example.com", "https://app.example.com", true},
		{"https://app.example.com", "https://APP.Example.com", true},
		{"https://app.example.com", "HTTPS://app.example.com", true},
		{"https://app.example.com", "http://app.example.com", false},
		{"https://app.example.com", "https://app.example.com:443", true},
		{"https://app.example.com:443", "https://app.example.com", true},
		{"https://app.example.com", "https://app.example.com:8443", false},
		{"https://app.example.com", "https://app.example.com.evil.test", false},
		{"https://app.example.com", "https://evilapp.example.com", false},
		{"https://app.example.com", "https://app.example.com/", false},
		{"https://app.example.com", "https://user@app.example.com", false},
		{"https://app.example.com", "https://app.example.com#", false},
		{"https://app.example.com", "app.example.com", false},
		{"https://app.example.com", "", false},
		{"http://localhost:3000", "http://localhost:3000", true},
		{"http://localhost:3000", "http://localhost:03000", true},
		{"http://localhost:3000", "http://localhost:3001", false},
		{"http://localhost:3000", "http://localhost", false},
		{"http://localhost:*", "http://localhost:5173", true},
		{"http://localhost:*", "http://localhost", true},
		{"http://localhost:*", "http://localhost:", false},
		{"https://*.example.com", "https://a.example.com", true},
		{"https://*.example.com", "https://a.b.example.com", true},
		{"https://*.example.com", "https://example.com", false},
		{"https://*.example.com", "https://.example.com", false},
		{"https://*.example.com", "https://evilexample.com", false},
		{"https://*.example.com", "http://a.example.com", false},
		{"https://*.example.com", "https://a.example.com:8443", false},
		{"*.example.com", "http://a.example.com", true},
		{"*.example.com", "https://a.example.com", true},
		{"*.example.com", "ftp://a.example.com", false},
		{"*.example.com", "https://a.example.com.evil", false},
		{"http://[::1]:8080", "http://[::1]:8080", true},
		{"http://[::1]:8080", "http://[::2]:8080", false},
		{"null", "null", true},
		{"null", "NULL", false},
		{"https://app.example.com", "null", false},
		{"chrome-extension://abcdef", "chrome-extension://abcdef", true},
	}
	for _, tt := range tests {
		p, err := parseOriginPattern(tt.pattern)
		if err != nil {
			t.Fatalf("parseOriginPattern(%q): %v", tt.pattern, err)
		}
		scheme, host, port, null, ok := parseOrigin([]byte(tt.origin))
		got := ok && p.match(scheme, host, port, null)
		if got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.pattern, tt.origin, got, tt.want)
		}
	}
}

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		in                 string
		scheme, host, port string
		null, ok           bool
	}{
		{"https://a.example", "https", "a.example", "", false, true},
		{"https://a.example:443", "https", "a.example", "", false, true},
		{"http://a.example:80", "http", "a.example", "", false, true},
		{"http://a.example:443", "http", "a.example", "443", false, true},
		{"http://a.example:0080", "http", "a.example", "", false, true},
		{"http://[::1]", "http", "[::1]", "", false, true},
		{"http://[::1]:9", "http", "[::1]", "9", false, true},
		{"null", "", "", "", true, true},
		{"", "", "", "", false, false},
		{"https:/a.example", "", "", "", false, false},
		{"://a.example", "", "", "", false, false},
		{"https://", "", "", "", false, false},
		{"https://a.example:", "", "", "", false, false},
		{"https://a.example:0", "", "", "", false, false},
		{"https://a.example:65536", "", "", "", false, false},
		{"https://a.example:x", "", "", "", false, false},
		{"https://a.example/p", "", "", "", false, false},
		{"https://a%2eexample", "", "", "", false, false},
		{"https://[::1", "", "", "", false, false},
		{"https://[::1]x", "", "", "", false, false},
		{"https://[]", "", "", "", false, false},
		{"https://a:b:c", "", "", "", false, false},
	}
	for _, tt := range tests {
		scheme, host, port, null, ok := parseOrigin([]byte(tt.in))
		if ok != tt.ok || null != tt.null || string(scheme) != tt.scheme || string(host) != tt.host || string(port) != tt.port {
			t.Errorf("parseOrigin(%q) = %q %q %q %v %v, want %q %q %q %v %v", tt.in,
				scheme, host, port, null, ok, tt.scheme, tt.host, tt.port, tt.null, tt.ok)
		}
	}
}

// exchange runs one request through f the way the proxy does: OnRequest,
// then (unless the filter stopped) an upstream response, then the deferred
// headers and OnResponse.
func exchange(t *testing.T, f *filter, method string, reqHeaders map[string]string, upstream func(*fasthttp.Response)) (*fasthttp.RequestCtx, sdk.Status) {
	t.Helper()
	rc := new(fasthttp.RequestCtx)
	var req fasthttp.Request
	req.SetRequestURI("http://gw.test/api")
	req.Header.SetMethod(method)
	for k, v := range reqHeaders {
		req.Header.Set(k, v)
	}
	rc.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	c := sdk.AcquireCtx(rc)
	defer sdk.ReleaseCtx(c)
	c.SetRequestID([]byte("rid"))
	st, err := f.OnRequest(c)
	if err != nil {
		t.Fatal(err)
	}
	if st == sdk.Continue {
		rc.Response.Reset()
		rc.Response.SetStatusCode(200)
		rc.Response.SetBodyString("upstream")
		if upstream != nil {
			upstream(&rc.Response)
		}
	} else {
		c.MarkStopped()
	}
	c.ApplyResponseHeaders()
	if err := f.OnResponse(c); err != nil {
		t.Fatal(err)
	}
	return rc, st
}

func header(rc *fasthttp.RequestCtx, name string) string {
	return string(rc.Response.Header.Peek(name))
}

func varyValues(rc *fasthttp.RequestCtx) []string {
	var out []string
	for _, v := range rc.Response.Header.PeekAll("Vary") {
		out = append(out, string(v))
	}
	return out
}

func TestPreflight(t *testing.T) {
	const cfg = `{"origins":["https://app.example.com","https://*.example.org"],"methods":["GET","POST"],"headers":["Content-Type","X-Token"],"credentials":true,"max_age":"10m"}`
	f := mustNew(t, "r", cfg)
	rc, st := exchange(t, f, "OPTIONS", map[string]string{
		"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-token",
	}, nil)
	if st != sdk.Stop || rc.Response.StatusCode() != 204 || len(rc.Response.Body()) != 0 {
		t.Fatalf("got %v %d %q, want Stop 204 with no body", st, rc.Response.StatusCode(), rc.Response.Body())
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET, POST",
		"Access-Control-Allow-Headers":     "Content-Type, X-Token",
		"Access-Control-Max-Age":           "600",
		"Content-Type":                     "",
	}
	for k, v := range want {
		if got := header(rc, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if v := varyValues(rc); len(v) != 1 || v[0] != "Origin" {
		t.Errorf("Vary = %q, want [Origin]", v)
	}

	// A wildcard origin is echoed.
	rc, _ = exchange(t, f, "OPTIONS", map[string]string{"Origin": "https://x.example.org", "Access-Control-Request-Method": "GET"}, nil)
	if got := header(rc, "Access-Control-Allow-Origin"); got != "https://x.example.org" {
		t.Errorf("wildcard origin: Access-Control-Allow-Origin = %q", got)
	}
}

func TestPreflightVariants(t *testing.T) {
	preflight := func(origin, reqHeaders string) map[string]string {
		h := map[string]string{"Origin": origin, "Access-Control-Request-Method": "PUT"}
		if reqHeaders != "" {
			h["Access-Control-Request-Headers"] = reqHeaders
		}
		return h
	}
	tests := []struct {
		name     string
		cfg      string
		method   string
		headers  map[string]string
		status   int    // response status; 200 = forwarded upstream
		origin   string // Access-Control-Allow-Origin
		allowHdr string
		methods  string
		vary     bool
	}{
		{"default methods, reflected headers", `{"origins":["https://a.example"]}`, "OPTIONS", preflight("https://a.example", "content-type,x-trace"),
			204, "https://a.example", "content-type,x-trace", "GET, HEAD, PUT, PATCH, POST, DELETE", true},
		{"reflected junk is dropped", `{"origins":["https://a.example"]}`, "OPTIONS", preflight("https://a.example", "x-a, (bad)"),
			204, "https://a.example", "", "GET, HEAD, PUT, PATCH, POST, DELETE", true},
		{"empty headers list sends none", `{"origins":["https://a.example"],"headers":[]}`, "OPTIONS", preflight("https://a.example", "x-a"),
			204, "https://a.example", "", "GET, HEAD, PUT, PATCH, POST, DELETE", true},
		{"any origin", `{"origins":["*"],"methods":["*"]}`, "OPTIONS", preflight("https://whoever.example", ""),
			204, "*", "", "*", false},
		{"disallowed origin", `{"origins":["https://a.example"]}`, "OPTIONS", preflight("https://b.example", "x-a"),
			403, "", "", "", true},
		{"malformed origin", `{"origins":["https://a.example"]}`, "OPTIONS", preflight("https://a.example/evil", ""),
			403, "", "", "", true},
		{"OPTIONS without request method is not a preflight", `{"origins":["https://a.example"]}`, "OPTIONS", map[string]string{"Origin": "https://a.example"},
			200, "https://a.example", "", "", true},
		{"OPTIONS without origin is not CORS", `{"origins":["https://a.example"]}`, "OPTIONS", map[string]string{"Access-Control-Request-Method": "PUT"},
			200, "", "", "", true},
		{"preflight_continue forwards", `{"origins":["https://a.example"],"preflight_continue":true}`, "OPTIONS", preflight("https://a.example", "x-a"),
			200, "https://a.example", "", "", true},
		{"preflight_continue forwards disallowed", `{"origins":["https://a.example"],"preflight_continue":true}`, "OPTIONS", preflight("https://b.example", "x-a"),
			200, "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, "r", tt.cfg)
			rc, _ := exchange(t, f, tt.method, tt.headers, nil)
			if rc.Response.StatusCode() != tt.status {
				t.Fatalf("status %d %s, want %d", rc.Response.StatusCode(), rc.Response.Body(), tt.status)
			}
			if tt.status == 403 {
				if want := `{"status":403,"error":"origin not allowed","request_id":"rid"}`; string(rc.Response.Body()) != want {
					t.Fatalf("body %s, want %s", rc.Response.Body(), want)
				}
			}
			for k, v := range map[string]string{
				"Access-Control-Allow-Origin":  tt.origin,
				"Access-Control-Allow-Headers": tt.allowHdr,
				"Access-Control-Allow-Methods": tt.methods,
			} {
				if got := header(rc, k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := len(varyValues(rc)) == 1 && varyValues(rc)[0] == "Origin"; got != tt.vary {
				t.Errorf("Vary = %q, want Origin: %v", varyValues(rc), tt.vary)
			}
		})
	}
}

func TestActualRequest(t *testing.T) {
	tests := []struct {
		name     string
		cfg      string
		origin   string
		upstream func(*fasthttp.Response)
		want     map[string]string
		vary     []string
	}{
		{"allowed exact", `{"origins":["https://a.example"]}`, "https://a.example", nil,
			map[string]string{"Access-Control-Allow-Origin": "https://a.example", "Access-Control-Allow-Credentials": "", "Access-Control-Expose-Headers": ""},
			[]string{"Origin"}},
		{"credentials and exposed", `{"origins":["https://*.a.example"],"credentials":true,"exposed_headers":["X-Total","X-Page"]}`, "https://x.a.example", nil,
			map[string]string{"Access-Control-Allow-Origin": "https://x.a.example", "Access-Control-Allow-Credentials": "true", "Access-Control-Expose-Headers": "X-Total, X-Page"},
			[]string{"Origin"}},
		{"any origin", `{"origins":["*"]}`, "https://z.example", nil,
			map[string]string{"Access-Control-Allow-Origin": "*"}, nil},
		{"disallowed gets nothing", `{"origins":["https://a.example"],"credentials":true}`, "https://evil.example", nil,
			map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": ""}, []string{"Origin"}},
		{"no origin still varies", `{"origins":["https://a.example"]}`, "", nil,
			map[string]string{"Access-Control-Allow-Origin": ""}, []string{"Origin"}},
		{"survives the upstream and replaces its value", `{"origins":["https://a.example"]}`, "https://a.example",
			func(r *fasthttp.Response) { r.Header.Set("Access-Control-Allow-Origin", "*") },
			map[string]string{"Access-Control-Allow-Origin": "https://a.example"}, []string{"Origin"}},
		{"upstream Vary kept", `{"origins":["https://a.example"]}`, "https://a.example",
			func(r *fasthttp.Response) { r.Header.Set("Vary", "Accept-Encoding") },
			nil, []string{"Accept-Encoding", "Origin"}},
		{"upstream Vary Origin not doubled", `{"origins":["https://a.example"]}`, "https://a.example",
			func(r *fasthttp.Response) { r.Header.Set("Vary", "accept-encoding, ORIGIN") },
			nil, []string{"accept-encoding, ORIGIN"}},
		{"upstream Vary star", `{"origins":["https://a.example"]}`, "https://a.example",
			func(r *fasthttp.Response) { r.Header.Set("Vary", "*") },
			nil, []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, "r", tt.cfg)
			h := map[string]string{}
			if tt.origin != "" {
				h["Origin"] = tt.origin
			}
			rc, st := exchange(t, f, "GET", h, tt.upstream)
			if st != sdk.Continue || string(rc.Response.Body()) != "upstream" {
				t.Fatalf("got %v %s, want the upstream response", st, rc.Response.Body())
			}
			for k, v := range tt.want {
				if got := header(rc, k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			got := varyValues(rc)
			if len(got) != len(tt.vary) {
				t.Fatalf("Vary = %q, want %q", got, tt.vary)
			}
			for i := range got {
				if got[i] != tt.vary[i] {
					t.Fatalf("Vary = %q, want %q", got, tt.vary)
				}
			}
		})
	}
}

func TestHasListToken(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"Origin", true}, {"origin", true}, {"Accept, Origin", true}, {" origin ,x", true},
		{"Origins", false}, {"X-Origin", false}, {"", false}, {",,", false}, {"a,\torigin\t", true},
	} {
		if got := hasListToken([]byte(tt.v), "origin"); got != tt.want {
			t.Errorf("hasListToken(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	f := mustNew(t, "", `{"origins":["https://a.example"]}`)
	get := func(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }
	names := []string{
		`weir_cors_preflight_total{route="_global",result="allowed"}`,
		`weir_cors_preflight_total{route="_global",result="rejected"}`,
		`weir_cors_disallowed_origin_total{route="_global"}`,
	}
	var before [3]uint64
	for i, n := range names {
		before[i] = get(n)
	}
	exchange(t, f, "OPTIONS", map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}, nil)
	exchange(t, f, "OPTIONS", map[string]string{"Origin": "https://b.example", "Access-Control-Request-Method": "GET"}, nil)
	exchange(t, f, "GET", map[string]string{"Origin": "https://b.example"}, nil)
	exchange(t, f, "GET", map[string]string{"Origin": "https://a.example"}, nil)
	for i, n := range names {
		if d := get(n) - before[i]; d != 1 {
			t.Errorf("%s moved by %d, want 1", n, d)
		}
	}
}

func TestRegistered(t *testing.T) {
	if _, ok := sdk.Lookup("cors"); !ok {
		t.Fatal("cors is not registered")
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	const cfg = `{"origins":["https://a.example","https://*.b.example"],"credentials":true,"exposed_headers":["X-Total"],"max_age":600}`
	f := mustNew(t, "r", cfg)
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    sdk.Status
	}{
		{"actual allowed", "GET", map[string]string{"Origin": "https://x.b.example"}, sdk.Continue},
		{"actual disallowed", "GET", map[string]string{"Origin": "https://evil.example"}, sdk.Continue},
		{"no origin", "GET", nil, sdk.Continue},
		{"preflight", "OPTIONS", map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-a"}, sdk.Stop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rc fasthttp.RequestCtx
			rc.Request.Header.SetMethod(tt.method)
			for k, v := range tt.headers {
				rc.Request.Header.Set(k, v)
			}
			// One request: a pooled Ctx, the filter, an upstream response
			// (reset, as fasthttp reuses it), the deferred headers and
			// OnResponse.
			once := func() {
				c := sdk.AcquireCtx(&rc)
				st, _ := f.OnRequest(c)
				if st != tt.want {
					t.Fatalf("status %v, want %v", st, tt.want)
				}
				if st == sdk.Continue {
					rc.Response.Reset()
					rc.Response.Header.Set("Vary", "Accept-Encoding")
				}
				c.ApplyResponseHeaders()
				_ = f.OnResponse(c)
				sdk.ReleaseCtx(c)
			}
			once()
			if allocs := testing.AllocsPerRun(200, once); allocs != 0 {
				t.Fatalf("a request allocates %.1f times", allocs)
			}
		})
	}
}
