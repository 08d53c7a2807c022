package requestsizelimit

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		raw  string
		want string
	}{
		{`{"max_bytes": 10}`, ""},
		{`{"max_bytes": 0}`, "max_bytes must be > 0"},
		{`{"max_bytes": -1}`, "max_bytes must be > 0"},
		{`{}`, "max_bytes must be > 0"},
		{`{"max_bytes": 10, "extra": 1}`, `unknown field "extra"`},
		{`{"max_bytes": "10"}`, "max_bytes"},
	}
	for _, c := range cases {
		_, err := New(&sdk.Build{}, json.RawMessage(c.raw))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.raw, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.raw, err, c.want)
		}
	}
}

func run(t *testing.T, f sdk.Filter, setup func(*fasthttp.Request)) (*fasthttp.RequestCtx, sdk.Status, *sdk.Ctx) {
	t.Helper()
	rc := &fasthttp.RequestCtx{}
	rc.Request.Header.SetMethod("POST")
	rc.Request.SetRequestURI("/x")
	setup(&rc.Request)
	c := sdk.AcquireCtx(rc)
	st, err := f.OnRequest(c)
	if err != nil {
		t.Fatal(err)
	}
	return rc, st, c
}

func TestLimits(t *testing.T) {
	f, _ := New(&sdk.Build{}, json.RawMessage(`{"max_bytes": 10}`))
	rc, st, c := run(t, f, func(r *fasthttp.Request) { r.SetBodyString("0123456789") })
	if st != sdk.Continue {
		t.Fatalf("at the limit: stopped with %d", rc.Response.StatusCode())
	}
	sdk.ReleaseCtx(c)
	rc, st, c = run(t, f, func(r *fasthttp.Request) { r.SetBodyString("0123456789x") })
	if st != sdk.Stop || rc.Response.StatusCode() != 413 || !strings.Contains(string(rc.Response.Body()), `"status":413`) {
		t.Fatalf("over the limit: %v %d %s", st, rc.Response.StatusCode(), rc.Response.Body())
	}
	sdk.ReleaseCtx(c)
	// Announced by Content-Length on a streamed body: refused before reading.
	rc, st, c = run(t, f, func(r *fasthttp.Request) { r.SetBodyStream(strings.NewReader(strings.Repeat("a", 100)), 100) })
	if st != sdk.Stop || rc.Response.StatusCode() != 413 {
		t.Fatalf("announced oversize: %v %d", st, rc.Response.StatusCode())
	}
	sdk.ReleaseCtx(c)
	// Chunked: the stream fails once it passes the limit, and the response
	// phase turns that into 413.
	rc, st, c = run(t, f, func(r *fasthttp.Request) { r.SetBodyStream(strings.NewReader(strings.Repeat("a", 100)), -1) })
	if st != sdk.Continue {
		t.Fatal("chunked body stopped before streaming")
	}
	n, err := io.Copy(io.Discard, rc.Request.BodyStream())
	if err != ErrTooLarge || n > 10 {
		t.Fatalf("chunked stream: read %d, err %v", n, err)
	}
	rc.Response.SetStatusCode(502) // what a failed forward leaves
	if err := f.(sdk.ResponseFilter).OnResponse(c); err != nil {
		t.Fatal(err)
	}
	if rc.Response.StatusCode() != 413 {
		t.Fatalf("chunked overflow answered %d", rc.Response.StatusCode())
	}
	sdk.ReleaseCtx(c)
	// Chunked within the limit passes whole.
	rc, _, c = run(t, f, func(r *fasthttp.Request) { r.SetBodyStream(strings.NewReader("short"), -1) })
	b, err := io.ReadAll(rc.Request.BodyStream())
	if err != nil || string(b) != "short" {
		t.Fatalf("small chunked: %q %v", b, err)
	}
	sdk.ReleaseCtx(c)
}
