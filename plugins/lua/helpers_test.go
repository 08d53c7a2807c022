package lua

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// logBuf collects what the plugin logs, safely across goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// build is a Build for route "r" whose logger writes to lb (when not nil).
func build(lb *logBuf) *sdk.Build {
	b := &sdk.Build{Route: "r", Service: "svc"}
	if lb != nil {
		b.Log = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return b
}

// cfgJSON is a config object with the script inline plus extra keys.
func cfgJSON(t testing.TB, src string, extra map[string]any) json.RawMessage {
	t.Helper()
	m := map[string]any{"source": src}
	for k, v := range extra {
		m[k] = v
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// newFilter builds a filter from an inline script; it is closed with the
// test. Unless extra sets one, the timeout is 1s rather than 50ms, so that
// a loaded machine (or -race) cannot turn a slow call into a failure.
func newFilter(t testing.TB, src string, extra map[string]any, lb *logBuf) sdk.Filter {
	t.Helper()
	if _, ok := extra["timeout"]; !ok {
		m := map[string]any{"timeout": "1s"}
		for k, v := range extra {
			m[k] = v
		}
		extra = m
	}
	f, err := New(build(lb), cfgJSON(t, src, extra))
	if err != nil {
		t.Fatalf("New: %v\nscript:\n%s", err, src)
	}
	t.Cleanup(func() { f.(sdk.Closer).Close() })
	return f
}

// base returns the *filter inside any of the wrapper types.
func base(f sdk.Filter) *filter { return member(f) }

// request builds a request context as the proxy would hand it to filters:
// normalized path set, route and request ID known. headers are "Name: value"
// strings. It has no body: what a script sees of a request body is tested
// through serve, since only the server hands a body over as a client sent
// it.
func request(method, uri string, headers ...string) (*fasthttp.RequestCtx, *sdk.Ctx) {
	rc := new(fasthttp.RequestCtx)
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	rc.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4321}, nil)
	c := sdk.AcquireCtx(rc)
	c.Route = "r"
	c.Service = "svc"
	c.SetPath(rc.Request.URI().Path())
	c.SetRequestID([]byte("req-1"))
	return rc, c
}

// serve runs f on route "r" behind the real proxy server, in front of a
// recording upstream (plugintest.Serve).
func serve(t testing.TB, f sdk.Filter) *plugintest.Gateway {
	t.Helper()
	return plugintest.Serve(t, plugintest.Route{Name: "r"}, f)
}

// access runs OnRequest and fails the test on an error.
func access(t testing.TB, f sdk.Filter, c *sdk.Ctx) sdk.Status {
	t.Helper()
	st, err := f.OnRequest(c)
	if err != nil {
		t.Fatalf("OnRequest: %v", err)
	}
	return st
}

// bufioReader wraps b for fasthttp's header parsers.
func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
