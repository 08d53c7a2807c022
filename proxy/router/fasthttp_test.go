package router_test

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/proxy/router"
)

// The proxy passes the real request header; the router itself does not
// import fasthttp.
var _ router.Headers = (*fasthttp.RequestHeader)(nil)

func TestFasthttpHeaders(t *testing.T) {
	r, errs := router.Compile([]router.Spec{
		{Paths: []string{"/"}, Headers: map[string]string{"x-api-version": "2"}},
	})
	if errs != nil {
		t.Fatal(errs)
	}
	var req fasthttp.Request
	req.SetRequestURI("http://API.example.com:8080/anything")
	req.Header.Set("X-API-VERSION", "2")
	host := router.NormalizeHost(nil, req.Host())
	var m router.Match
	if res := r.Match(host, req.Header.Method(), req.URI().Path(), &req.Header, &m); res != router.Found {
		t.Fatalf("Match = %v, want Found", res)
	}
	if n := testing.AllocsPerRun(100, func() {
		r.Match(host, req.Header.Method(), req.URI().Path(), &req.Header, &m)
	}); n != 0 {
		t.Errorf("Match with *fasthttp.RequestHeader allocates %v times", n)
	}
	req.Header.Set("X-Api-Version", "3")
	if res := r.Match(host, req.Header.Method(), req.URI().Path(), &req.Header, &m); res != router.NotFound {
		t.Fatalf("Match = %v, want NotFound", res)
	}
}
