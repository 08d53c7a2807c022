package responsetransformer

import (
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// FuzzOnResponse feeds upstream-controlled bodies, statuses and content
// types through a JSON-editing config: the client never gets a password
// key at any letter case from a body that was edited, an edited body is
// valid JSON with a matching Content-Length, and everything else passes
// byte for byte.
func FuzzOnResponse(f *testing.F) {
	f.Add([]byte(`{"password":"p","a":1}`), 200, "application/json")
	f.Add([]byte(`{"PASSWORD":"p"}`), 404, "application/problem+json; charset=utf-8")
	f.Add([]byte(`{"a":`), 200, "application/json")
	f.Add([]byte(`{"password":1}`), 206, "application/json")
	f.Add([]byte(`{"password":1}`), 200, "text/plain")
	f.Add([]byte(`{"meta":null,"pa\u0073sword":[]}`), 201, "application/json")
	flt := mustNew(f, usersRoute(), `{"json":{"set":{"meta.source":"weir"},"remove":["password"]},"remove":{"headers":["X-Debug"]}}`)
	f.Fuzz(func(t *testing.T, body []byte, status int, ct string) {
		if status < 200 || status > 599 || status == 204 || status == 304 || strings.ContainsAny(ct, "\r\n\x00") {
			return
		}
		var rc fasthttp.RequestCtx
		rc.Response.SetStatusCode(status)
		rc.Response.Header.SetContentType(ct)
		rc.Response.Header.Set("X-Debug", "1")
		rc.Response.SetBody(body)
		c := sdk.AcquireCtx(&rc)
		defer sdk.ReleaseCtx(c)
		if err := flt.OnResponse(c); err != nil {
			t.Fatal(err)
		}
		if len(rc.Response.Header.Peek("X-Debug")) != 0 {
			t.Fatal("X-Debug kept")
		}
		out := rc.Response.Body()
		if bytes.Equal(out, body) {
			return
		}
		plugintest.EditedJSON(t, out, rc.Response.Header.ContentLength(), "password")
	})
}
