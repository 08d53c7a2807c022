package proxy

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

var staticBody = []byte("0123456789012345678901234567890123456789012345678901234567890123")

// staticUpstream answers every request with a fixed 64-byte body and
// allocates nothing itself, so allocation counts below are the gateway's.
func staticUpstream(t testing.TB) *upstream {
	return startUpstream(t, func(rc *fasthttp.RequestCtx) { rc.SetBody(staticBody) })
}

const allocConfig = `
listen: "127.0.0.1:0"
services: [{name: s, targets: [{url: "UP"}]}]
routes:
  - {name: exact, paths: ["=/exact"], service: s}
  - {name: api, paths: ["/api"], strip_path: true, service: s}
  - {name: users, paths: ["/users/{id}"], methods: [GET], service: s}
`

func newDirectCtx(t testing.TB) *fasthttp.RequestCtx {
	var req fasthttp.Request
	rc := &fasthttp.RequestCtx{}
	rc.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	// As fasthttp's server does for every connection's ctx (unless
	// ReduceMemoryUsage, which Weir never sets): body buffers stay with the
	// ctx instead of going back to the shared bytebufferpool, whose size
	// calibration would otherwise decide whether a request allocates.
	rc.Request.KeepBodyBuffer = true
	rc.Response.KeepBodyBuffer = true
	return rc
}

// calibrateBodyPoolSmall drives fasthttp's shared response-body pool
// through a calibration on 64-byte bodies, as a process whose other
// traffic is small bodies would: afterwards the pool drops any buffer
// grown past 64 bytes, so a path that still borrowed from it would
// allocate on every error answer (their JSON is ~90 bytes).
func calibrateBodyPoolSmall() {
	var r fasthttp.Response
	for i := 0; i < 43000; i++ { // > bytebufferpool's calibrateCallsThreshold
		r.SetBody(staticBody)
		r.ResetBody()
	}
}

func prepare(rc *fasthttp.RequestCtx, uri string) {
	rc.Request.Reset()
	rc.Response.Reset()
	rc.Request.Header.SetMethod("GET")
	rc.Request.SetRequestURI(uri)
	rc.Request.Header.SetHost("gw.example.com")
	rc.Request.Header.Set("User-Agent", "alloc-test")
}

// allocServer is a server on allocConfig in front of a static upstream,
// shut down when the test ends; the test is skipped under -race.
func allocServer(t *testing.T) *Server {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); `make unit` runs this test")
	}
	up := staticUpstream(t)
	srv, err := New(mustParse(t, sub(allocConfig, "UP", up.URL)), "test.yaml", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(ctxTimeout(2e9)) })
	return srv
}

// TestZeroAllocRouteAndForward proves the no-allocation habit (docs/architecture.md) for the core
// path: route match + forward of a GET with no plugins allocates nothing
// per request once pools are warm.
func TestZeroAllocRouteAndForward(t *testing.T) {
	srv := allocServer(t)
	h := srv.Handler()
	rc := newDirectCtx(t)
	for _, uri := range []string{"/exact", "/api/things?x=1", "/users/42"} {
		t.Run(uri, func(t *testing.T) {
			for i := 0; i < 50; i++ { // warm pools, counters, connections
				prepare(rc, uri)
				h(rc)
				if rc.Response.StatusCode() != 200 {
					t.Fatalf("warm-up: %d %s", rc.Response.StatusCode(), rc.Response.Body())
				}
			}
			allocs := testing.AllocsPerRun(200, func() {
				prepare(rc, uri)
				h(rc)
			})
			if rc.Response.StatusCode() != 200 || string(rc.Response.Body()) != string(staticBody) {
				t.Fatalf("unexpected answer %d %q", rc.Response.StatusCode(), rc.Response.Body())
			}
			if allocs != 0 {
				t.Fatalf("%s: %.1f allocations per request, want 0", uri, allocs)
			}
		})
	}
	t.Run("404", func(t *testing.T) {
		calibrateBodyPoolSmall()
		prepare(rc, "/nope")
		h(rc)
		allocs := testing.AllocsPerRun(200, func() {
			prepare(rc, "/nope")
			h(rc)
		})
		if rc.Response.StatusCode() != 404 || allocs != 0 {
			t.Fatalf("404 path: status %d, %.1f allocs", rc.Response.StatusCode(), allocs)
		}
	})
}

// TestZeroAllocBufferedPost: a small POST whose body arrives as a stream
// (as the server hands every body to the handler) is read into the
// request's buffer and forwarded without allocating once warm, sent with
// Content-Length or chunked.
func TestZeroAllocBufferedPost(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); `make unit` runs this test")
	}
	// The upstream buffers bodies: a fasthttp server that streams them
	// allocates to discard each one after its handler, which is not the
	// gateway's cost.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(rc *fasthttp.RequestCtx) { rc.SetBody(staticBody) }, NoDefaultServerHeader: true}
	go func() { _ = up.Serve(ln) }()
	defer up.Shutdown()
	srv, err := New(mustParse(t, sub(allocConfig, "UP", "http://"+ln.Addr().String())), "test.yaml", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctxTimeout(2e9))
	h := srv.Handler()
	rc := newDirectCtx(t)
	body := []byte(`{"user":"ann","password":"hunter2"}`)
	var r bytes.Reader
	for _, size := range []int{len(body), -1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			step := func() {
				prepare(rc, "/exact")
				rc.Request.Header.SetMethod("POST")
				r.Reset(body)
				rc.Request.SetBodyStream(&r, size)
				h(rc)
			}
			for i := 0; i < 50; i++ {
				step()
			}
			allocs := testing.AllocsPerRun(200, step)
			if rc.Response.StatusCode() != 200 || rc.Request.IsBodyStream() || string(rc.Request.Body()) != string(body) {
				t.Fatalf("answer %d, body streamed %v %q", rc.Response.StatusCode(), rc.Request.IsBodyStream(), rc.Request.Body())
			}
			if allocs != 0 {
				t.Fatalf("%.1f allocations per request, want 0", allocs)
			}
		})
	}
}

// TestZeroAllocKeepAliveRoundTrip: the whole keep-alive exchange — the
// server loop reading each request (its first byte alone, then the rest,
// with the read buffer given back between requests: third_party/fasthttp),
// the handler, the upstream round trip and the answer — allocates nothing
// per request, client included.
func TestZeroAllocKeepAliveRoundTrip(t *testing.T) {
	srv := allocServer(t)
	ln := fasthttputil.NewInmemoryListener()
	go func() { _ = srv.Serve(ln) }()
	c := &fasthttp.HostClient{Addr: "gw", Dial: func(string) (net.Conn, error) { return ln.Dial() }, ReadTimeout: 5 * time.Second}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://gw/users/42")
	round := func() {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("%v %d", err, resp.StatusCode())
		}
	}
	for i := 0; i < 50; i++ {
		round()
	}
	if n := testing.AllocsPerRun(200, round); n != 0 {
		t.Fatalf("%.2f allocations per keep-alive round trip, want 0", n)
	}
}
