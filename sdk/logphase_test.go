package sdk

import (
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestCopyForLog: the copy holds what a deferred log phase reads, and
// none of it shares memory with the request, which is reused as soon as
// the answer is written.
func TestCopyForLog(t *testing.T) {
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/users/42?x=1")
	rc.Request.Header.SetMethod("POST")
	rc.Request.Header.Set("X-Probe", "p")
	rc.Response.SetStatusCode(418)
	rc.Response.Header.Set("X-Out", "o")
	c := AcquireCtx(&rc)
	defer ReleaseCtx(c)
	c.Route, c.Service = "r", "s"
	c.SetPath([]byte("/users/42"))
	c.AddParam("id", c.Path()[7:9])
	c.SetRequestID([]byte("rid"))
	c.SetConsumer(&Consumer{Name: "alice"}, "k1")
	c.AddScope("read")
	c.clientIP, c.clientIPSet = netip.MustParseAddr("10.0.0.1"), true
	key := new(int)
	c.SetValue(key, "v")

	var drc fasthttp.RequestCtx
	d := AcquireCtx(&drc)
	defer ReleaseCtx(d)
	c.CopyForLog(d)

	// The request's buffers are reused by the next request on the
	// connection: scribble over them.
	c.Path()[7] = '9'
	rc.Request.Header.Set("X-Probe", "changed")
	rc.Response.SetStatusCode(200)

	if string(d.Method()) != "POST" || string(d.Request().Header.Peek("X-Probe")) != "p" ||
		string(d.Request().URI().QueryArgs().Peek("x")) != "1" {
		t.Fatalf("request: %s %q", d.Method(), d.Request().Header.Peek("X-Probe"))
	}
	if d.Response().StatusCode() != 418 || string(d.Response().Header.Peek("X-Out")) != "o" {
		t.Fatalf("response: %d %q", d.Response().StatusCode(), d.Response().Header.Peek("X-Out"))
	}
	if d.Route != "r" || d.Service != "s" || string(d.RequestID()) != "rid" || string(d.Path()) != "/users/42" ||
		string(d.Param("id")) != "42" || d.Consumer().Name != "alice" || d.Credential() != "k1" ||
		!d.HasScope("read") || d.ClientIP() != netip.MustParseAddr("10.0.0.1") || d.Value(key) != "v" || d.Start != c.Start {
		t.Fatalf("ctx fields not copied: route %q service %q id %q path %q param %q consumer %v ip %v value %v",
			d.Route, d.Service, d.RequestID(), d.Path(), d.Param("id"), d.Consumer(), d.ClientIP(), d.Value(key))
	}
}
