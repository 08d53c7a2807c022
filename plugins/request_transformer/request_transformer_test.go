package requesttransformer

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

func TestHeaders(t *testing.T) {
	tests := []struct {
		name   string
		cfg    string
		in     []string            // request headers, name/value pairs
		want   map[string][]string // every value expected; nil slice: absent
		params []string
	}{
		{name: "add when absent", cfg: `{"add":{"headers":{"X-From":"weir"}}}`,
			want: map[string][]string{"X-From": {"weir"}}},
		{name: "add keeps a present header", cfg: `{"add":{"headers":{"X-From":"weir"}}}`,
			in: []string{"X-From", "client"}, want: map[string][]string{"X-From": {"client"}}},
		{name: "add keeps a present header, names in other cases", cfg: `{"add":{"headers":{"x-FROM":"weir"}}}`,
			in: []string{"X-FROM", "client"}, want: map[string][]string{"X-From": {"client"}}},
		{name: "set adds", cfg: `{"set":{"headers":{"X-Env":"prod"}}}`,
			want: map[string][]string{"X-Env": {"prod"}}},
		{name: "set replaces every occurrence", cfg: `{"set":{"headers":{"X-Env":"prod"}}}`,
			in: []string{"X-Env", "dev", "x-env", "test"}, want: map[string][]string{"X-Env": {"prod"}}},
		{name: "set a number", cfg: `{"set":{"headers":{"X-Version":2}}}`,
			want: map[string][]string{"X-Version": {"2"}}},
		{name: "remove every occurrence", cfg: `{"remove":{"headers":["X-Debug"]}}`,
			in:   []string{"X-Debug", "1", "X-Debug", "2", "X-Keep", "k"},
			want: map[string][]string{"X-Debug": nil, "X-Keep": {"k"}}},
		{name: "remove absent", cfg: `{"remove":{"headers":["X-Debug"]}}`,
			in: []string{"X-Keep", "k"}, want: map[string][]string{"X-Debug": nil, "X-Keep": {"k"}}},
		{name: "rename moves every value", cfg: `{"rename":{"headers":{"X-Old":"X-New"}}}`,
			in:   []string{"X-Old", "a", "X-Old", "b"},
			want: map[string][]string{"X-Old": nil, "X-New": {"a", "b"}}},
		{name: "rename replaces the target", cfg: `{"rename":{"headers":{"X-Old":"X-New"}}}`,
			in:   []string{"X-New", "client", "X-Old", "a"},
			want: map[string][]string{"X-Old": nil, "X-New": {"a"}}},
		{name: "rename of an absent header leaves the target", cfg: `{"rename":{"headers":{"X-Old":"X-New"}}}`,
			in: []string{"X-New", "client"}, want: map[string][]string{"X-New": {"client"}}},
		{name: "rename then add a default", cfg: `{"rename":{"headers":{"X-Old":"X-New"}},"add":{"headers":{"X-New":"default"}}}`,
			want: map[string][]string{"X-New": {"default"}}},
		{name: "rename a special header", cfg: `{"rename":{"headers":{"Content-Type":"X-Original-Type"}}}`,
			in:   []string{"Content-Type", "text/plain"},
			want: map[string][]string{"X-Original-Type": {"text/plain"}}},
		{name: "rename into a special header", cfg: `{"rename":{"headers":{"X-Agent":"User-Agent"}}}`,
			in:   []string{"User-Agent", "curl", "X-Agent", "bot"},
			want: map[string][]string{"User-Agent": {"bot"}, "X-Agent": nil}},
		{name: "set Content-Type", cfg: `{"set":{"headers":{"Content-Type":"application/xml"}}}`,
			in: []string{"Content-Type", "text/plain"}, want: map[string][]string{"Content-Type": {"application/xml"}}},
		{name: "template from a route parameter", cfg: `{"set":{"headers":{"X-User":"user-{id}"}}}`,
			params: []string{"id", "42"}, want: map[string][]string{"X-User": {"user-42"}}},
		{name: "escaped braces stay literal", cfg: `{"set":{"headers":{"X-Lit":"{{id}}"}}}`,
			params: []string{"id", "42"}, want: map[string][]string{"X-Lit": {"{id}"}}},
		{name: "SPEC order: remove, rename, set, add", cfg: `{
			"add":    {"headers": {"X-From": "weir"}},
			"set":    {"headers": {"X-Env": "prod"}},
			"remove": {"headers": ["X-Debug"]},
			"rename": {"headers": {"X-Old": "X-New"}}}`,
			in: []string{"X-Debug", "1", "X-Old", "o", "X-Env", "dev"},
			want: map[string][]string{"X-From": {"weir"}, "X-Env": {"prod"}, "X-Debug": nil,
				"X-Old": nil, "X-New": {"o"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, usersRoute(), tt.cfg)
			rc := request("/users/42", tt.in...)
			st, _, err := run(t, f, rc, tt.params...)
			if err != nil || st != sdk.Continue {
				t.Fatalf("OnRequest = %v, %v", st, err)
			}
			for name, want := range tt.want {
				got := plugintest.Values(&rc.Request.Header, name)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestQuery(t *testing.T) {
	tests := []struct {
		name, cfg, uri, want string
		params               []string
	}{
		{name: "add when absent", cfg: `{"add":{"query":{"v":"2"}}}`, uri: "/x?a=1", want: "a=1&v=2"},
		{name: "add to an empty query", cfg: `{"add":{"query":{"v":"2"}}}`, uri: "/x", want: "v=2"},
		{name: "add keeps a present argument", cfg: `{"add":{"query":{"v":"2"}}}`, uri: "/x?v=1", want: "v=1"},
		{name: "set replaces in place, once", cfg: `{"set":{"query":{"v":"2"}}}`, uri: "/x?a=1&v=1&b=2&v=3", want: "a=1&v=2&b=2"},
		{name: "set appends when absent", cfg: `{"set":{"query":{"v":"2"}}}`, uri: "/x?a=1", want: "a=1&v=2"},
		{name: "remove every occurrence", cfg: `{"remove":{"query":["token"]}}`, uri: "/x?token=a&b=2&token=c", want: "b=2"},
		{name: "remove sees through percent-encoding", cfg: `{"remove":{"query":["token"]}}`, uri: "/x?t%6Fken=a&b=2", want: "b=2"},
		{name: "untouched arguments keep their bytes", cfg: `{"remove":{"query":["token"]}}`,
			uri: "/x?q=a%20b+c&token=1&e=%E2%82%AC&raw=a/b", want: "q=a%20b+c&e=%E2%82%AC&raw=a/b"},
		{name: "rename keeps the value bytes", cfg: `{"rename":{"query":{"old":"new"}}}`, uri: "/x?old=a%2Fb&c=1", want: "new=a%2Fb&c=1"},
		{name: "rename replaces the target", cfg: `{"rename":{"query":{"old":"new"}}}`, uri: "/x?new=client&old=1", want: "new=1"},
		{name: "rename of an absent argument leaves the target", cfg: `{"rename":{"query":{"old":"new"}}}`, uri: "/x?new=client", want: "new=client"},
		{name: "names and values are encoded", cfg: `{"set":{"query":{"a b":"x&y=z"}}}`, uri: "/x", want: "a%20b=x%26y%3Dz"},
		{name: "template values are encoded", cfg: `{"set":{"query":{"user":"{id}"}}}`, params: []string{"id", "a b/c"},
			uri: "/x", want: "user=a%20b%2Fc"},
		{name: "SPEC example", cfg: `{"add":{"query":{"v":"2"}},"remove":{"query":["token"]}}`, uri: "/x?token=s3cr3t&q=1", want: "q=1&v=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, usersRoute(), tt.cfg)
			rc := request(tt.uri)
			if _, _, err := run(t, f, rc, tt.params...); err != nil {
				t.Fatal(err)
			}
			if got := string(rc.Request.URI().QueryString()); got != tt.want {
				t.Fatalf("query %q, want %q", got, tt.want)
			}
			// QueryArgs agree with the raw string the proxy forwards.
			args := rc.Request.URI().QueryArgs()
			var again fasthttp.Args
			again.Parse(tt.want)
			if args.String() != again.String() {
				t.Fatalf("QueryArgs %q disagree with %q", args.String(), again.String())
			}
		})
	}
}

func TestQueryUntouchedIsNotRewritten(t *testing.T) {
	f := mustNew(t, usersRoute(), `{"remove":{"query":["token"]},"add":{"query":{"v":"2"}}}`)
	rc := request("/x?q=a%20b+c&v=1")
	if _, _, err := run(t, f, rc); err != nil {
		t.Fatal(err)
	}
	if got := string(rc.Request.RequestURI()); got != "/x?q=a%20b+c&v=1" {
		t.Fatalf("request URI %q was rewritten", got)
	}
}

func TestPath(t *testing.T) {
	tests := []struct {
		name, cfg, path string
		params          []string
		want            string
	}{
		{name: "literal", cfg: `{"path":"/health"}`, path: "/users/7", want: "/health"},
		{name: "SPEC example", cfg: `{"path":"/v2/users/{id}"}`, path: "/users/7", params: []string{"id", "7"}, want: "/v2/users/7"},
		{name: "decoded value (the proxy encodes)", cfg: `{"path":"/v2/users/{id}"}`, path: "/users/a b", params: []string{"id", "a b"}, want: "/v2/users/a b"},
		{name: "several parameters", cfg: `{"path":"/{b}/x/{a}/{a}"}`, path: "/p", params: []string{"a", "1", "b", "2"}, want: "/2/x/1/1"},
		{name: "empty capture", cfg: `{"path":"/v2/{id}"}`, path: "/p", params: []string{"id", ""}, want: "/v2/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sdk.Build{Route: "r", Params: []string{"id", "a", "b"}}
			f := mustNew(t, b, tt.cfg)
			rc := request(tt.path + "?q=1")
			st, up, err := run(t, f, rc, tt.params...)
			if err != nil || st != sdk.Continue {
				t.Fatalf("OnRequest = %v, %v", st, err)
			}
			if up != tt.want {
				t.Fatalf("upstream path %q, want %q", up, tt.want)
			}
			if q := string(rc.Request.URI().QueryString()); q != "q=1" {
				t.Fatalf("query changed to %q", q)
			}
		})
	}
}

func TestPathMissingParameter(t *testing.T) {
	// A route whose paths do not all declare {id}: the proxy did not list
	// parameters, so the request finds out.
	f := mustNew(t, &sdk.Build{Route: "users"}, `{"path":"/v2/users/{id}"}`)
	_, _, err := run(t, f, request("/u/7"), "uid", "7")
	want := "path: the request has no route parameter {id} (does every path of the route declare it?)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestPathDotSegmentRefused(t *testing.T) {
	// A regex route's capture may span segments; one that would make a
	// ".." segment upstream is refused.
	f := mustNew(t, &sdk.Build{Route: "r", Params: []string{"rest"}}, `{"path":"/v2/{rest}/x"}`)
	rc := request("/files/a/../b")
	st, _, err := run(t, f, rc, "rest", "a/..")
	if err != nil || st != sdk.Stop || rc.Response.StatusCode() != fasthttp.StatusBadRequest {
		t.Fatalf("status %v, %v, HTTP %d; want Stop with 400", st, err, rc.Response.StatusCode())
	}
	if !bytes.Contains(rc.Response.Body(), []byte(`"error":"invalid path parameter"`)) {
		t.Fatalf("body %s", rc.Response.Body())
	}
}

func TestHeaderTemplateMissingParameter(t *testing.T) {
	f := mustNew(t, &sdk.Build{Route: "users"}, `{"add":{"headers":{"X-User":"{id}"}}}`)
	_, _, err := run(t, f, request("/u"))
	want := "X-User: the request has no route parameter {id} (does every path of the route declare it?)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func jsonCounter(route, result string) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`weir_transformer_json_bodies_total{plugin="request_transformer",route=%q,result=%q}`, route, result))
}

func TestJSONBody(t *testing.T) {
	spec := `{"json":{"set":{"meta.source":"weir"},"remove":["password"]},"max_body_bytes":200}`
	big := `{"password":"p","pad":"` + strings.Repeat("x", 200) + `"}`
	streamed := `{"password":"p","pad":"` + strings.Repeat("x", 300<<10) + `"}`
	tests := []struct {
		name, ct, ce, body string
		want               string // "" : untouched
		result             string // counted result, "" for none
	}{
		{name: "SPEC example", ct: "application/json", body: `{"user":"a","password":"p"}`,
			want: `{"user":"a","meta":{"source":"weir"}}`, result: "rewritten"},
		{name: "charset parameter", ct: "application/json; charset=utf-8", body: `{"password":"p"}`,
			want: `{"meta":{"source":"weir"}}`, result: "rewritten"},
		{name: "json suffix", ct: "application/vnd.api+json", body: `{}`,
			want: `{"meta":{"source":"weir"}}`, result: "rewritten"},
		{name: "nested into existing", ct: "application/json", body: `{"meta":{"v":1}}`,
			want: `{"meta":{"v":1,"source":"weir"}}`, result: "rewritten"},
		{name: "already as configured", ct: "application/json", body: `{"meta":{"source":"weir"}}`,
			want: `{"meta":{"source":"weir"}}`, result: "rewritten"},
		{name: "not JSON content type", ct: "text/plain", body: `{"password":"p"}`},
		{name: "form body", ct: "application/x-www-form-urlencoded", body: `password=p`},
		{name: "invalid JSON", ct: "application/json", body: `{"password":"p",}`, result: "invalid"},
		{name: "top-level array", ct: "application/json", body: `[{"password":"p"}]`, result: "not_object"},
		{name: "over max_body_bytes", ct: "application/json", body: big, result: "too_large"},
		{name: "compressed", ct: "application/json", ce: "gzip", body: `{"password":"p"}`, result: "encoded"},
		{name: "empty body", ct: "application/json", body: ``},
		// Over the proxy's buffering threshold: it streams to the upstream
		// and the filter never holds it.
		{name: "streamed", ct: "application/json", body: streamed, result: "streamed"},
	}
	for _, tt := range tests {
		for _, chunked := range []bool{false, true} {
			name := tt.name
			if chunked {
				name += " chunked"
			}
			t.Run(name, func(t *testing.T) {
				route := plugintest.FreshRoute("json-" + strings.ReplaceAll(name, " ", "-"))
				f := mustNew(t, &sdk.Build{Route: route}, spec)
				send := plugintest.Send{Method: "POST", URI: "/x", Body: tt.body, Chunked: chunked,
					HeaderLines: []string{"Content-Type", tt.ct}}
				if tt.ce != "" {
					send.HeaderLines = append(send.HeaderLines, "Content-Encoding", tt.ce)
				}
				a := serve(t, route, f).Do(t, send)
				if a.Status != 200 || a.Upstream == nil {
					t.Fatalf("status %d %s", a.Status, a.Body)
				}
				want := tt.want
				if want == "" {
					want = tt.body
				}
				up := a.Upstream
				if got := string(up.Body); got != want {
					t.Fatalf("upstream got %.60s (%d bytes), want %.60s", got, len(got), want)
				}
				if tt.result != "streamed" && (up.Chunked || up.ContentLength != int64(len(want))) {
					t.Fatalf("upstream got Content-Length %d (chunked %v), want %d", up.ContentLength, up.Chunked, len(want))
				}
				plugintest.WantOnlyCounted(t, func(r string) uint64 { return jsonCounter(route, r).Get() },
					[]string{"rewritten", "unchanged", "invalid", "not_object", "too_large", "streamed", "encoded"}, tt.result)
			})
		}
	}
}

func TestJSONBodyRemoveMissingKeepsBytes(t *testing.T) {
	route := plugintest.FreshRoute("json-unchanged")
	f := mustNew(t, &sdk.Build{Route: route}, `{"json":{"remove":["password"]}}`)
	body := "{ \"a\" : 1 }"
	a := serve(t, route, f).Do(t, plugintest.Send{URI: "/x", Body: body, HeaderLines: []string{"Content-Type", "application/json"}})
	if a.Upstream == nil || string(a.Upstream.Body) != body {
		t.Fatalf("body changed: %d %+v", a.Status, a.Upstream)
	}
	if got := jsonCounter(route, "unchanged").Get(); got != 1 {
		t.Fatalf("unchanged counted %d", got)
	}
}

// TestBodyJudgedByReceivedContentType: the JSON step runs before the
// header step, on the Content-Type the client sent.
func TestBodyJudgedByReceivedContentType(t *testing.T) {
	f := mustNew(t, usersRoute(), `{"set":{"headers":{"Content-Type":"application/json"}},"json":{"remove":["a"]}}`)
	a := serve(t, "users", f).Do(t, plugintest.Send{URI: "/x", Body: `{"a":1}`, HeaderLines: []string{"Content-Type", "text/plain"}})
	if a.Upstream == nil || string(a.Upstream.Body) != `{"a":1}` || a.Upstream.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("upstream got %+v", a.Upstream)
	}
}

// TestUpstreamSeesTransformedRequest (the example in README.md) runs the
// filter behind the real proxy server on route /users/{id} and checks what
// the upstream gets.
func TestUpstreamSeesTransformedRequest(t *testing.T) {
	f := mustNew(t, usersRoute(), `{
		"add":    {"headers": {"X-From": "weir"}, "query": {"v": "2"}},
		"set":    {"headers": {"X-Env": "prod", "X-User-Id": "{id}"}},
		"remove": {"headers": ["X-Debug"], "query": ["token"]},
		"rename": {"headers": {"X-Old": "X-New"}},
		"path":   "/v2/users/{id}",
		"json":   {"set": {"meta.source": "weir"}, "remove": ["password"]}}`)
	g := plugintest.Serve(t, plugintest.Route{Name: "users", Paths: []string{"/users/{id}"}}, f)
	a := g.Do(t, plugintest.Send{Method: "POST", URI: "/users/7?token=s&q=a%20b", Body: `{"name":"n","password":"p"}`,
		HeaderLines: []string{"X-Debug", "1", "X-Old", "o", "Content-Type", "application/json"}})
	if a.Status != 200 || a.Upstream == nil {
		t.Fatalf("status %d %s", a.Status, a.Body)
	}
	s := a.Upstream
	wantBody := `{"name":"n","meta":{"source":"weir"}}`
	if s.URI != "/v2/users/7?q=a%20b&v=2" {
		t.Errorf("upstream URI %q", s.URI)
	}
	if string(s.Body) != wantBody || s.ContentLength != int64(len(wantBody)) {
		t.Errorf("upstream body %q with Content-Length %d", s.Body, s.ContentLength)
	}
	for name, want := range map[string]string{"X-From": "weir", "X-Env": "prod", "X-User-Id": "7", "X-Debug": "", "X-Old": "", "X-New": "o"} {
		if v := s.Header.Get(name); v != want {
			t.Errorf("upstream %s = %q, want %q", name, v, want)
		}
	}
}
