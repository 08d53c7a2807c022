package responsetransformer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
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
		in     []string
		want   map[string][]string
		params []string
	}{
		{name: "add when absent", cfg: `{"add":{"headers":{"X-From":"weir"}}}`,
			want: map[string][]string{"X-From": {"weir"}}},
		{name: "add keeps the upstream's", cfg: `{"add":{"headers":{"Cache-Control":"no-store"}}}`,
			in: []string{"Cache-Control", "max-age=60"}, want: map[string][]string{"Cache-Control": {"max-age=60"}}},
		{name: "set replaces every occurrence", cfg: `{"set":{"headers":{"X-Env":"prod"}}}`,
			in: []string{"X-Env", "a", "X-Env", "b"}, want: map[string][]string{"X-Env": {"prod"}}},
		{name: "remove", cfg: `{"remove":{"headers":["Server","X-Powered-By"]}}`,
			in:   []string{"Server", "nginx", "X-Powered-By", "PHP", "X-Keep", "k"},
			want: map[string][]string{"Server": nil, "X-Powered-By": nil, "X-Keep": {"k"}}},
		{name: "remove Set-Cookie", cfg: `{"remove":{"headers":["Set-Cookie"]}}`,
			in: []string{"Set-Cookie", "a=1", "Set-Cookie", "b=2"}, want: map[string][]string{"Set-Cookie": nil}},
		{name: "rename moves every value in order", cfg: `{"rename":{"headers":{"X-Old":"X-New"}}}`,
			in: []string{"X-Old", "a", "X-Other", "o", "X-Old", "b"}, want: map[string][]string{"X-Old": nil, "X-New": {"a", "b"}, "X-Other": {"o"}}},
		{name: "rename Content-Type", cfg: `{"rename":{"headers":{"Content-Type":"X-Upstream-Type"}}}`,
			in: []string{"Content-Type", "text/csv"}, want: map[string][]string{"X-Upstream-Type": {"text/csv"}}},
		{name: "set Server", cfg: `{"set":{"headers":{"Server":"weir"}}}`,
			in: []string{"Server", "nginx"}, want: map[string][]string{"Server": {"weir"}}},
		{name: "template", cfg: `{"set":{"headers":{"Location":"/v2/users/{id}"}}}`, params: []string{"id", "7"},
			want: map[string][]string{"Location": {"/v2/users/7"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, usersRoute(), tt.cfg)
			var rc fasthttp.RequestCtx
			rc.Request.SetRequestURI("/users/7")
			err := respond(t, f, &rc, func() { upstreamResponse(&rc, 200, "ok", tt.in...) }, tt.params...)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				if got := plugintest.Values(&rc.Response.Header, name); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if string(rc.Response.Body()) != "ok" {
				t.Errorf("body changed: %q", rc.Response.Body())
			}
		})
	}
}

func jsonCounter(route, result string) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`weir_transformer_json_bodies_total{plugin="response_transformer",route=%q,result=%q}`, route, result))
}

// wire writes the response as the client would get it and parses it back.
func wire(t *testing.T, resp *fasthttp.Response) *fasthttp.Response {
	t.Helper()
	var buf bytes.Buffer
	if _, err := resp.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	var back fasthttp.Response
	if err := back.Read(bufio.NewReader(&buf)); err != nil {
		t.Fatalf("reading back %q: %v", buf.String(), err)
	}
	return &back
}

func TestJSONBody(t *testing.T) {
	cfg := `{"json":{"set":{"meta.source":"weir"},"remove":["password"]},"max_body_bytes":100}`
	tests := []struct {
		name    string
		status  int
		headers []string
		body    string
		want    string // "" : untouched
		result  string
	}{
		{name: "SPEC example", status: 200, headers: []string{"Content-Type", "application/json"},
			body: `{"id":1,"password":"x"}`, want: `{"id":1,"meta":{"source":"weir"}}`, result: "rewritten"},
		{name: "problem+json error", status: 404, headers: []string{"Content-Type", "application/problem+json"},
			body: `{"title":"nope"}`, want: `{"title":"nope","meta":{"source":"weir"}}`, result: "rewritten"},
		{name: "not JSON", status: 200, headers: []string{"Content-Type", "text/html"}, body: `{"password":"x"}`},
		{name: "no content type", status: 200, body: `{"password":"x"}`},
		{name: "invalid JSON", status: 200, headers: []string{"Content-Type", "application/json"}, body: `{"password":"x"`, result: "invalid"},
		{name: "oversized", status: 200, headers: []string{"Content-Type", "application/json"},
			body: `{"password":"x","pad":"` + strings.Repeat("p", 100) + `"}`, result: "too_large"},
		{name: "compressed", status: 200, headers: []string{"Content-Type", "application/json", "Content-Encoding", "br"},
			body: `{"password":"x"}`, result: "encoded"},
		{name: "partial content", status: 206, headers: []string{"Content-Type", "application/json", "Content-Range", "bytes 0-15/40"},
			body: `{"password":"x"}`, result: "partial"},
		{name: "remove nothing, set already", status: 200, headers: []string{"Content-Type", "application/json"},
			body: `{"meta":{"source":"weir"}}`, want: `{"meta":{"source":"weir"}}`, result: "rewritten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := plugintest.FreshRoute("resp-" + strings.ReplaceAll(tt.name, " ", "-"))
			f := mustNew(t, &sdk.Build{Route: route}, cfg)
			var rc fasthttp.RequestCtx
			rc.Request.SetRequestURI("/x")
			if err := respond(t, f, &rc, func() { upstreamResponse(&rc, tt.status, tt.body, tt.headers...) }); err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = tt.body
			}
			if got := string(rc.Response.Body()); got != want {
				t.Fatalf("body %s, want %s", got, want)
			}
			back := wire(t, &rc.Response)
			if back.Header.ContentLength() != len(want) || string(back.Body()) != want {
				t.Fatalf("on the wire: Content-Length %d, body %q", back.Header.ContentLength(), back.Body())
			}
			plugintest.WantOnlyCounted(t, func(r string) uint64 { return jsonCounter(route, r).Get() },
				[]string{"rewritten", "unchanged", "invalid", "not_object", "too_large", "streamed", "encoded", "partial"}, tt.result)
		})
	}
}

func TestJSONBodyStreamedUntouched(t *testing.T) {
	route := plugintest.FreshRoute("resp-stream")
	f := mustNew(t, &sdk.Build{Route: route}, `{"json":{"remove":["password"]}}`)
	var rc fasthttp.RequestCtx
	err := respond(t, f, &rc, func() {
		rc.Response.Header.SetContentType("application/json")
		rc.Response.SetBodyStream(strings.NewReader(`{"password":"x"}`), -1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rc.Response.IsBodyStream() {
		t.Fatal("the stream was read")
	}
	if got := jsonCounter(route, "streamed").Get(); got != 1 {
		t.Fatalf("streamed counted %d", got)
	}
}

// TestETagKept: the edited body keeps the upstream's validator (README,
// "JSON bodies"), so If-Match and If-None-Match keep working upstream.
func TestETagKept(t *testing.T) {
	f := mustNew(t, usersRoute(), `{"json":{"remove":["password"]}}`)
	for _, tag := range []string{`"v1"`, `W/"v1"`} {
		var rc fasthttp.RequestCtx
		err := respond(t, f, &rc, func() {
			upstreamResponse(&rc, 200, `{"password":"x"}`, "Content-Type", "application/json", "ETag", tag)
		})
		if err != nil {
			t.Fatal(err)
		}
		if string(rc.Response.Body()) != `{}` {
			t.Fatalf("body %s was not edited", rc.Response.Body())
		}
		if got := string(rc.Response.Header.Peek("ETag")); got != tag {
			t.Errorf("ETag %s became %s", tag, got)
		}
	}
}

// TestRequestAsksForEditableBody: with JSON operations the request loses
// Accept-Encoding, Range and If-Range, so the upstream sends a whole,
// uncompressed body; header-only configs leave the request alone.
func TestRequestAsksForEditableBody(t *testing.T) {
	for cfg, stripped := range map[string]bool{
		`{"json":{"remove":["password"]}}`:     true,
		`{"set":{"headers":{"X-Env":"prod"}}}`: false,
	} {
		f := mustNew(t, usersRoute(), cfg)
		var rc fasthttp.RequestCtx
		rc.Request.SetRequestURI("/x")
		for _, h := range []string{"Accept-Encoding", "Range", "If-Range"} {
			rc.Request.Header.Set(h, "x")
		}
		c := sdk.AcquireCtx(&rc)
		st, err := f.OnRequest(c)
		sdk.ReleaseCtx(c)
		if err != nil || st != sdk.Continue {
			t.Fatalf("OnRequest = %v, %v", st, err)
		}
		for _, h := range []string{"Accept-Encoding", "Range", "If-Range"} {
			if gone := len(rc.Request.Header.Peek(h)) == 0; gone != stripped {
				t.Errorf("%s: %s removed = %v, want %v", cfg, h, gone, stripped)
			}
		}
	}
}

// TestSharedBodyNotWritten: a cache hit hands its stored bytes to fasthttp
// with SetBodyRaw; editing the response must not write into them.
func TestSharedBodyNotWritten(t *testing.T) {
	f := mustNew(t, usersRoute(), `{"json":{"set":{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}}}`)
	stored := []byte(`{"a":1,"z":"tail of the stored object"}`)
	orig := string(stored)
	var rc fasthttp.RequestCtx
	if err := respond(t, f, &rc, func() {
		rc.Response.Header.SetContentType("application/json")
		rc.Response.SetBodyRaw(stored)
	}); err != nil {
		t.Fatal(err)
	}
	if string(stored) != orig {
		t.Fatalf("stored bytes changed to %s", stored)
	}
	if want := `{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","z":"tail of the stored object"}`; string(rc.Response.Body()) != want {
		t.Fatalf("body %s", rc.Response.Body())
	}
}

// TestGatewayErrorsAreTransformed documents that the response phase sees
// whatever response the client gets, the gateway's own errors included.
func TestGatewayErrorsAreTransformed(t *testing.T) {
	f := mustNew(t, usersRoute(), `{"set":{"headers":{"X-Env":"prod"}}}`)
	var rc fasthttp.RequestCtx
	if err := respond(t, f, &rc, func() {
		sdk.WriteError(&rc, 502, "upstream failed", []byte("id"))
	}); err != nil {
		t.Fatal(err)
	}
	if string(rc.Response.Header.Peek("X-Env")) != "prod" || rc.Response.StatusCode() != 502 {
		t.Fatalf("%s", rc.Response.String())
	}
}

// TestReadmeExample checks the example in README.md.
// TestReadmeExample runs the README's example behind the real proxy
// server, on route /users/{id}, against an upstream answering with it.
func TestReadmeExample(t *testing.T) {
	f := mustNew(t, usersRoute(), `{
		"add":    {"headers": {"Cache-Control": "no-store"}},
		"set":    {"headers": {"X-Served-By": "weir", "Content-Location": "/v2/users/{id}"}},
		"remove": {"headers": ["Server", "X-Debug"]},
		"rename": {"headers": {"X-Upstream-Version": "X-Api-Version"}},
		"json":   {"set": {"meta.source": "weir"}, "remove": ["password"]}}`)
	g := plugintest.Serve(t, plugintest.Route{Name: "users", Paths: []string{"/users/{id}"}}, f)
	g.Upstream(func(_ *plugintest.Received, w http.ResponseWriter) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("ETag", `"v3"`)
		h.Set("Server", "nginx")
		h.Set("X-Upstream-Version", "3")
		_, _ = io.WriteString(w, `{"id":7,"password":"x"}`)
	})
	a := g.Do(t, plugintest.Send{URI: "/users/7"})
	want := map[string]string{
		"Content-Type": "application/json", "ETag": `"v3"`, "X-Api-Version": "3", "X-Served-By": "weir",
		"Content-Location": "/v2/users/7", "Cache-Control": "no-store", "Content-Length": "33",
		"Server": "", "X-Upstream-Version": "",
	}
	for k, v := range want {
		if got := a.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if a.Status != 200 || a.Body != `{"id":7,"meta":{"source":"weir"}}` {
		t.Errorf("answer %d %s", a.Status, a.Body)
	}
}
