package echo

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestHandler(t *testing.T) {
	h := Handler("e1")
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/some/path?x=1")
	rc.Request.Header.Set("X-Test", "v")
	rc.Request.SetBodyString("hello")
	h(&rc)
	var r Reply
	if err := json.Unmarshal(rc.Response.Body(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Path != "/some/path" || r.Query != "x=1" || r.Headers["X-Test"] != "v" || r.Body != "hello" || r.BodyLen != 5 || r.Server != "e1" {
		t.Fatalf("%+v", r)
	}
	for path, want := range map[string]int{"/status/418": 418, "/healthz": 200, "/static": 200} {
		var rc fasthttp.RequestCtx
		rc.Request.SetRequestURI(path)
		h(&rc)
		if rc.Response.StatusCode() != want {
			t.Errorf("%s: %d", path, rc.Response.StatusCode())
		}
	}
	var big fasthttp.RequestCtx
	big.Request.SetRequestURI("/bytes/1000")
	h(&big)
	if !big.Response.IsBodyStream() || big.Response.Header.ContentLength() != 1000 {
		t.Fatalf("/bytes: stream %v, length %d", big.Response.IsBodyStream(), big.Response.Header.ContentLength())
	}
	if n, _ := copyCount(strings.NewReader(strings.Repeat("a", 70000))); n != 70000 {
		t.Fatalf("copyCount %d", n)
	}
}
