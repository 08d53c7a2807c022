package proxy

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"github.com/weirgw/weir/internal/echo"
	"github.com/weirgw/weir/proxy/config"
)

// upstream is a real loopback server for tests.
type upstream struct {
	ln   net.Listener
	srv  *fasthttp.Server
	Addr string
	URL  string
}

func startUpstream(t testing.TB, h fasthttp.RequestHandler) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ln: ln, Addr: ln.Addr().String()}
	u.URL = "http://" + u.Addr
	u.srv = &fasthttp.Server{Handler: h, StreamRequestBody: true, NoDefaultServerHeader: true, NoDefaultDate: true}
	go func() { _ = u.srv.Serve(ln) }()
	t.Cleanup(func() { _ = u.srv.Shutdown() })
	return u
}

func startEcho(t testing.TB, name string) *upstream {
	return startUpstream(t, echo.Handler(name))
}

// gateway is a Server on an in-memory listener with a client for it.
type gateway struct {
	t      testing.TB
	srv    *Server
	ln     *fasthttputil.InmemoryListener
	client *fasthttp.Client
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustParse(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	config.ApplyDefaults(cfg)
	if err := config.Validate(cfg, "test.yaml"); err != nil {
		t.Fatalf("validate config: %v", err)
	}
	return cfg
}

func startGateway(t testing.TB, yaml string) *gateway {
	t.Helper()
	srv, err := New(mustParse(t, yaml), "test.yaml", quietLog())
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	ln := fasthttputil.NewInmemoryListener()
	go func() { _ = srv.Serve(ln) }()
	g := &gateway{t: t, srv: srv, ln: ln}
	g.client = &fasthttp.Client{
		Dial:                   func(string) (net.Conn, error) { return ln.Dial() },
		DisablePathNormalizing: true,
		ReadTimeout:            10 * time.Second,
		MaxResponseBodySize:    64 << 20,
	}
	t.Cleanup(func() {
		_ = srv.Shutdown(ctxTimeout(5 * time.Second))
		_ = ln.Close()
	})
	return g
}

// do sends a request built by fn and returns status, headers and body.
func (g *gateway) do(method, uri string, fn func(*fasthttp.Request)) (*fasthttp.Response, string) {
	g.t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://gw" + uri)
	if fn != nil {
		fn(req)
	}
	resp := &fasthttp.Response{}
	if err := g.client.DoTimeout(req, resp, 10*time.Second); err != nil {
		g.t.Fatalf("%s %s: %v", method, uri, err)
	}
	return resp, string(resp.Body())
}

func (g *gateway) get(uri string) (*fasthttp.Response, string) { return g.do("GET", uri, nil) }

func sub(s, old, new string) string { return strings.ReplaceAll(s, old, new) }
