package requesttransformer

import (
	"bytes"
	stdjson "encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// FuzzOnRequest feeds client-controlled query strings, JSON bodies and
// parameter values through the SPEC example config and checks what the
// upstream would get: no token, no password at any letter case, v
// present, valid JSON with a matching Content-Length whenever the body
// was edited, and the body untouched when it was not valid JSON.
func FuzzOnRequest(f *testing.F) {
	f.Add("token=a&q=1", []byte(`{"password":"p","a":1}`), "7")
	f.Add("t%6Fken=a&v=9", []byte(`{"PassWord":"p","meta":null}`), "a b")
	f.Add("", []byte(`{"pa\u0073sword":1}`), "")
	f.Add("a&&b=%zz", []byte(`[1,2]`), "%2F")
	f.Add("q=a+b", []byte(`{"a":`), "..")
	f.Add("x", []byte(`{"meta":"s","password":{"x":[1,{"password":2}]}}`), "é")
	flt := mustNew(f, usersRoute(), specConfig)
	f.Fuzz(func(t *testing.T, query string, body []byte, id string) {
		if strings.ContainsAny(query, "# \t\r\n") || strings.ContainsAny(id, "/\x00\r\n") {
			return // not what the proxy hands to filters
		}
		var rc fasthttp.RequestCtx
		rc.Request.SetRequestURI("/users/x?" + query)
		rc.Request.Header.SetMethod("POST")
		rc.Request.Header.SetContentType("application/json")
		rc.Request.Header.Set("X-Debug", "1")
		rc.Request.SetBody(body)
		c := plugintest.Acquire(&rc, "id", id) // path /users/x
		defer sdk.ReleaseCtx(c)
		st, err := flt.OnRequest(c)
		if err != nil {
			t.Fatal(err)
		}
		if id == "." || id == ".." {
			if st != sdk.Stop || rc.Response.StatusCode() != 400 {
				t.Fatalf("dot segment %q not refused", id)
			}
			return
		}
		if st != sdk.Continue {
			t.Fatalf("status %v", st)
		}
		if up := string(c.UpstreamPath()); up != "/v2/users/"+id {
			t.Fatalf("upstream path %q", up)
		}
		args := rc.Request.URI().QueryArgs()
		if args.Has("token") || !args.Has("v") {
			t.Fatalf("query %q", rc.Request.URI().QueryString())
		}
		if len(rc.Request.Header.Peek("X-Debug")) != 0 || string(rc.Request.Header.Peek("X-Env")) != "prod" {
			t.Fatalf("headers %s", rc.Request.Header.String())
		}
		out := rc.Request.Body()
		if bytes.Equal(out, body) {
			// Left alone: not a JSON object, or nothing to do — no
			// password, and a "meta" that is not an object (a set below a
			// string or array is skipped, README "JSON bodies").
			var m map[string]any
			if stdjson.Unmarshal(body, &m) == nil && m != nil {
				for k := range m {
					if strings.EqualFold(k, "password") {
						t.Fatalf("%q kept %q", body, k)
					}
				}
				switch m["meta"].(type) {
				case map[string]any, nil:
					t.Fatalf("a JSON object was not edited: %q", body)
				}
			}
			return
		}
		m := plugintest.EditedJSON(t, out, rc.Request.Header.ContentLength(), "password")
		if meta, _ := m["meta"].(map[string]any); meta == nil && m["meta"] == nil {
			t.Fatalf("%q: no meta object", out)
		}
	})
}
