package lua

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// TestChainOrder: grouped lua instances run by PRIORITY, highest first, in
// every phase, equal priorities in the given order; a script's PRIORITY
// global counts as a Kong handler's.
func TestChainOrder(t *testing.T) {
	var lb logBuf
	kong := func(name string) sdk.Filter {
		raw, _ := json.Marshal(map[string]any{"kong_plugin": "testdata/kong/" + name, "timeout": "1s"})
		f, err := New(build(&lb), raw)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.(sdk.Closer).Close() })
		return f
	}
	script := func(prio, tag string) sdk.Filter {
		return newFilter(t, prio+`
function access() weir.request.set_header("X-Order", (weir.request.get_header("X-Order") or "") .. "`+tag+`,") end
function log() weir.log.info("order log `+tag+`") end`, nil, &lb)
	}
	ch := group([]sdk.Filter{kong("order_lo"), script("", "zero1"), kong("order_hi"), script("PRIORITY = 1500", "mid"), script("", "zero2")})
	rc, c := request("GET", "/")
	defer sdk.ReleaseCtx(c)
	if st := access(t, ch, c); st != sdk.Continue {
		t.Fatalf("status %v", st)
	}
	if got := string(rc.Request.Header.Peek("X-Order")); got != "hi,mid,lo,zero1,zero2," {
		t.Errorf("access order %q", got)
	}
	rc.Response.SetBodyString("body")
	if err := ch.(sdk.ResponseFilter).OnResponse(c); err != nil {
		t.Fatal(err)
	}
	if got, body := string(rc.Response.Header.Peek("X-Order-Resp")), string(rc.Response.Body()); got != "hi,lo," || body != "body|hi|lo" {
		t.Errorf("response order %q, body %q", got, body)
	}
	ch.(sdk.LogFilter).OnLog(c)
	logs := lb.String()
	var at []int
	for _, tag := range []string{"hi", "mid", "lo", "zero1", "zero2"} {
		at = append(at, strings.Index(logs, "order log "+tag))
	}
	for i := range at {
		if at[i] < 0 || i > 0 && at[i] < at[i-1] {
			t.Fatalf("log order %v in\n%s", at, logs)
		}
	}
}

// TestBodyFilterChunkedAnswer: behind the real proxy, a chunked upstream
// answer reaches body_filter whole (the proxy reads it for a route with a
// body_filter, sdk.WholeBodyFilter) and goes out with a Content-Length;
// a route without one leaves it chunked.
func TestBodyFilterChunkedAnswer(t *testing.T) {
	chunked := func(_ *plugintest.Received, w http.ResponseWriter) {
		_, _ = io.WriteString(w, "hello")
		w.(http.Flusher).Flush() // a chunked answer from here on
		_, _ = io.WriteString(w, " world")
	}
	g := serve(t, newFilter(t, `function body_filter(body) return body:upper() end`, nil, nil))
	g.Upstream(chunked)
	a := g.Do(t, plugintest.Send{})
	if a.Status != 200 || a.Body != "HELLO WORLD" || a.Header.Get("Content-Length") != "11" {
		t.Fatalf("%d %q Content-Length %q; want the whole body filtered, sent with a Content-Length", a.Status, a.Body, a.Header.Get("Content-Length"))
	}
	h := serve(t, newFilter(t, `function header_filter() weir.response.set_header("X-Seen", "1") end`, nil, nil))
	h.Upstream(chunked)
	if a := h.Do(t, plugintest.Send{}); a.Body != "hello world" || a.Header.Get("Content-Length") != "" || a.Header.Get("X-Seen") != "1" {
		t.Fatalf("without body_filter: %q Content-Length %q; want it streamed as it came", a.Body, a.Header.Get("Content-Length"))
	}
}
