package cache

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/testclock"
	"github.com/weirgw/weir/sdk"
)

// newFakeClock is the freshness tests' clock, at a fixed instant.
func newFakeClock() *testclock.Clock {
	return testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// clockDate formats the clock's time plus d as an IMF-fixdate.
func clockDate(c *testclock.Clock, d time.Duration) string {
	return c.Now().Add(d).UTC().Format(time.RFC1123)[:26] + "GMT"
}

// newTestFilter builds and starts an instance with a fake clock. Each test
// gets its own route name so that registered scopes do not mix.
func newTestFilter(t testing.TB, cfg string) (*Filter, *testclock.Clock) {
	t.Helper()
	return newTestFilterRedis(t, cfg, nil)
}

func newTestFilterRedis(t testing.TB, cfg string, rc rueidis.Client) (*Filter, *testclock.Clock) {
	t.Helper()
	b := &sdk.Build{Route: fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()), Redis: rc}
	flt, err := New(b, json.RawMessage(cfg))
	if err != nil {
		t.Fatalf("New(%s): %v", cfg, err)
	}
	f := flt.(*Filter)
	clk := newFakeClock()
	f.now = clk.Now
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f, clk
}

// req describes a client request.
type req struct {
	method   string
	url      string
	hdr      []string // "Name: value"
	consumer *sdk.Consumer
}

// originFn answers a forwarded request with a raw response: a status and
// header lines ("Name: value"), and a body.
type originFn func(r *fasthttp.Request) (status int, hdr []string, body string)

// result is what the client got.
type result struct {
	status   int
	body     string
	hdr      fasthttp.ResponseHeader
	upstream bool                   // the origin was asked
	upReq    fasthttp.RequestHeader // what the origin saw
}

func (r *result) get(name string) string { return string(r.hdr.Peek(name)) }

func (r *result) x() string { return r.get("X-Cache-Status") }

// do runs one request through the plugin the way the proxy does:
// OnRequest, the origin unless stopped, OnResponse, deferred headers,
// OnLog.
func do(t testing.TB, f *Filter, q req, origin originFn) *result {
	t.Helper()
	var rc fasthttp.RequestCtx
	if q.method == "" {
		q.method = "GET"
	}
	rc.Request.Header.SetMethod(q.method)
	rc.Request.SetRequestURI(q.url)
	for _, h := range q.hdr {
		k, v, _ := strings.Cut(h, ":")
		rc.Request.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	c := sdk.AcquireCtx(&rc)
	defer sdk.ReleaseCtx(c)
	c.Route = f.route
	c.SetPath(rc.Request.URI().Path())
	if q.consumer != nil {
		c.SetConsumer(q.consumer, "cred")
	}
	res := &result{}
	st, err := f.OnRequest(c)
	if err != nil {
		t.Fatalf("OnRequest: %v", err)
	}
	if st == sdk.Continue {
		if origin == nil {
			t.Fatalf("%s %s went upstream unexpectedly", q.method, q.url)
		}
		res.upstream = true
		rc.Request.Header.CopyTo(&res.upReq)
		status, hdr, body := origin(&rc.Request)
		setRawResponse(t, &rc.Response, status, hdr, body, q.method == "HEAD")
	}
	if err := f.OnResponse(c); err != nil {
		t.Fatalf("OnResponse: %v", err)
	}
	c.ApplyResponseHeaders()
	f.OnLog(c)
	res.status = rc.Response.StatusCode()
	res.body = string(rc.Response.Body())
	rc.Response.Header.CopyTo(&res.hdr)
	return res
}

// setRawResponse fills resp by parsing a raw response, as the proxy's
// client would (fields set through the API would lose Date).
func setRawResponse(t testing.TB, resp *fasthttp.Response, status int, hdr []string, body string, head bool) {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "HTTP/1.1 %d %s\r\n", status, fasthttp.StatusMessage(status))
	for _, h := range hdr {
		sb.WriteString(h)
		sb.WriteString("\r\n")
	}
	if status != 304 && status != 204 {
		fmt.Fprintf(&sb, "Content-Length: %d\r\n", len(body))
	}
	sb.WriteString("\r\n")
	if status != 304 && status != 204 && !head {
		sb.WriteString(body)
	}
	resp.SkipBody = head
	if err := resp.Read(bufio.NewReader(strings.NewReader(sb.String()))); err != nil {
		t.Fatalf("parse origin response: %v", err)
	}
}

// fixed returns an origin that always answers the same.
func fixed(status int, body string, hdr ...string) originFn {
	return func(*fasthttp.Request) (int, []string, string) { return status, hdr, body }
}

// counting wraps an origin and counts its calls.
type counting struct {
	mu sync.Mutex
	n  int
	fn originFn
}

func (c *counting) origin(r *fasthttp.Request) (int, []string, string) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.fn(r)
}

func (c *counting) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func wantX(t testing.TB, r *result, x string) {
	t.Helper()
	if r.x() != x {
		t.Fatalf("X-Cache-Status = %q, want %q (status %d, upstream %v)", r.x(), x, r.status, r.upstream)
	}
}
