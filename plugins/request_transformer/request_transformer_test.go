package requesttransformer

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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

// wireContentLength serializes the request as fasthttp sends it upstream
// and returns its Content-Length.
func wireContentLength(t *testing.T, req *fasthttp.Request) int {
	t.Helper()
	var buf bytes.Buffer
	if _, err := req.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(buf.String(), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("no Content-Length in %q", buf.String())
	return 0
}

func TestJSONBody(t *testing.T) {
	spec := `{"json":{"set":{"meta.source":"weir"},"remove":["password"]},"max_body_bytes":200}`
	big := `{"password":"p","pad":"` + strings.Repeat("x", 200) + `"}`
	tests := []struct {
		name, ct, ce, body string
		want               string // "" : untouched
		result             string // counted result, "" for none
	}{
		{name: "SPEC example", ct: "application/json", body: `{"user":"a","password":"p"}`,
			want: `{"user":"a","meta":{"source":"weir"}}`, result: "rewritten"},
		{name: "charset parameter", ct: "application/json; charset=utf-8", body: `{"password":"p"}`,
			want: `{"meta":{"source":"weir"}}`, result: "rewritten"},
		{name: "+json suffix", ct: "application/vnd.api+json", body: `{}`,
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := "json-" + strings.ReplaceAll(tt.name, " ", "-")
			f := mustNew(t, &sdk.Build{Route: route}, spec)
			rc := request("/x", "Content-Type", tt.ct)
			if tt.ce != "" {
				rc.Request.Header.Set("Content-Encoding", tt.ce)
			}
			rc.Request.SetBodyString(tt.body)
			rc.Request.Header.SetContentLength(len(tt.body)) // as the client sent it
			rc.Request.SetHost("example.com")
			if _, _, err := run(t, f, rc); err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = tt.body
			}
			if got := string(rc.Request.Body()); got != want {
				t.Fatalf("body %s, want %s", got, want)
			}
			if n := rc.Request.Header.ContentLength(); n != len(want) {
				t.Fatalf("Content-Length header %d, want %d", n, len(want))
			}
			if len(want) > 0 {
				if n := wireContentLength(t, &rc.Request); n != len(want) {
					t.Fatalf("Content-Length on the wire %d, want %d", n, len(want))
				}
			}
			plugintest.WantOnlyCounted(t, func(r string) uint64 { return jsonCounter(route, r).Get() },
				[]string{"rewritten", "unchanged", "invalid", "not_object", "too_large", "streamed", "encoded"}, tt.result)
		})
	}
}

func TestJSONBodyRemoveMissingKeepsBytes(t *testing.T) {
	f := mustNew(t, &sdk.Build{Route: "json-unchanged"}, `{"json":{"remove":["password"]}}`)
	body := "{ \"a\" : 1 }"
	rc := request("/x", "Content-Type", "application/json")
	rc.Request.SetBodyString(body)
	if _, _, err := run(t, f, rc); err != nil {
		t.Fatal(err)
	}
	if string(rc.Request.Body()) != body {
		t.Fatalf("body %q changed", rc.Request.Body())
	}
	if got := jsonCounter("json-unchanged", "unchanged").Get(); got != 1 {
		t.Fatalf("unchanged counted %d", got)
	}
}

func TestJSONBodyStreamedUntouched(t *testing.T) {
	f := mustNew(t, &sdk.Build{Route: "json-stream"}, `{"json":{"remove":["password"]}}`)
	rc := request("/x", "Content-Type", "application/json")
	rc.Request.SetBodyStream(strings.NewReader(`{"password":"p"}`), -1)
	if _, _, err := run(t, f, rc); err != nil {
		t.Fatal(err)
	}
	if !rc.Request.IsBodyStream() {
		t.Fatal("the stream was consumed")
	}
	if got := jsonCounter("json-stream", "streamed").Get(); got != 1 {
		t.Fatalf("streamed counted %d", got)
	}
}

// TestBodyJudgedByReceivedContentType: the JSON step runs before the
// header step, on the Content-Type the client sent.
func TestBodyJudgedByReceivedContentType(t *testing.T) {
	f := mustNew(t, usersRoute(), `{"set":{"headers":{"Content-Type":"application/json"}},"json":{"remove":["a"]}}`)
	rc := request("/x", "Content-Type", "text/plain")
	rc.Request.SetBodyString(`{"a":1}`)
	if _, _, err := run(t, f, rc); err != nil {
		t.Fatal(err)
	}
	if string(rc.Request.Body()) != `{"a":1}` || string(rc.Request.Header.ContentType()) != "application/json" {
		t.Fatalf("body %s, type %s", rc.Request.Body(), rc.Request.Header.ContentType())
	}
}

// TestUpstreamSeesTransformedRequest (the example in README.md) forwards a transformed request to a
// real server on loopback, as the proxy does (upstream path, then the raw
// query string), and checks what arrives.
func TestUpstreamSeesTransformedRequest(t *testing.T) {
	type seen struct {
		uri  string
		hdr  http.Header
		body string
		cl   int64
	}
	got := make(chan seen, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.RequestURI, r.Header.Clone(), string(b), r.ContentLength}
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	defer srv.Close()

	f := mustNew(t, usersRoute(), `{
		"add":    {"headers": {"X-From": "weir"}, "query": {"v": "2"}},
		"set":    {"headers": {"X-Env": "prod", "X-User-Id": "{id}"}},
		"remove": {"headers": ["X-Debug"], "query": ["token"]},
		"rename": {"headers": {"X-Old": "X-New"}},
		"path":   "/v2/users/{id}",
		"json":   {"set": {"meta.source": "weir"}, "remove": ["password"]}}`)
	rc := request("/users/7?token=s&q=a%20b", "X-Debug", "1", "X-Old", "o", "Content-Type", "application/json")
	rc.Request.Header.SetMethod("POST")
	rc.Request.SetBodyString(`{"name":"n","password":"p"}`)
	c := plugintest.Acquire(rc, "id", "7")
	if _, err := f.OnRequest(c); err != nil {
		t.Fatal(err)
	}
	// What the proxy's forward does with the result.
	uri := string(c.UpstreamPath()) + "?" + string(rc.Request.URI().QueryString())
	sdk.ReleaseCtx(c)
	rc.Request.SetRequestURI(uri)
	rc.Request.SetHost(ln.Addr().String())
	var resp fasthttp.Response
	client := &fasthttp.Client{}
	if err := client.DoTimeout(&rc.Request, &resp, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s := <-got
	wantBody := `{"name":"n","meta":{"source":"weir"}}`
	if s.uri != "/v2/users/7?q=a%20b&v=2" {
		t.Errorf("upstream URI %q", s.uri)
	}
	if s.body != wantBody || s.cl != int64(len(wantBody)) {
		t.Errorf("upstream body %q with Content-Length %d", s.body, s.cl)
	}
	for name, want := range map[string]string{"X-From": "weir", "X-Env": "prod", "X-User-Id": "7", "X-Debug": "", "X-Old": "", "X-New": "o"} {
		if v := s.hdr.Get(name); v != want {
			t.Errorf("upstream %s = %q, want %q", name, v, want)
		}
	}
}
