package wasm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// headersWasm is the example guest (examples/headers), built by TestMain
// with the standard Go toolchain: tests never depend on a committed
// binary.
var headersWasm string

// testDir is TestMain's temporary directory, removed after the run.
var testDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weir-wasm-test-")
	testDir = dir
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	headersWasm, err = buildGuest("examples/headers", filepath.Join(dir, "headers.wasm"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// Keep one filter of the example guest open for the whole run: the
	// compilation cache keeps a module's machine code while some filter
	// uses it, so the tests' many New calls do not each recompile it (a
	// second or more, much more under -race).
	keep, err := New(build(nil), json.RawMessage(`{"module":"`+headersWasm+`","timeout":"10s"}`))
	if err != nil {
		fmt.Fprintln(os.Stderr, "compiling the example guest:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	keep.(sdk.Closer).Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildGuest compiles the Go guest in srcDir into a reactor module.
func buildGuest(srcDir, out string) (string, error) {
	goBin := "go"
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "go"); statOK(p) {
			goBin = p
		}
	}
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test guest %s: %v\n%s", srcDir, err, b)
	}
	return out, nil
}

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
	} else {
		b.Log = slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	}
	return b
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// cfg is a config object for module plus extra keys. Unless extra sets
// one, the timeout is 2s rather than 20ms, so that a loaded machine (or
// -race) cannot turn a slow callback into a failure.
func cfg(t testing.TB, module string, extra map[string]any) json.RawMessage {
	t.Helper()
	m := map[string]any{"module": module, "timeout": "2s"}
	for k, v := range extra {
		m[k] = v
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// newFilter builds a filter, closed with the test.
func newFilter(t testing.TB, module string, extra map[string]any, lb *logBuf) *filter {
	t.Helper()
	f, err := New(build(lb), cfg(t, module, extra))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { f.(sdk.Closer).Close() })
	return f.(*filter)
}

// headersConfig is the example guest's configuration used by most tests.
var headersConfig = map[string]any{
	"request_headers":  map[string]string{"X-Wasm-Added": "yes"},
	"response_headers": map[string]string{"X-Wasm-Filter": "headers"},
	"block_header":     "X-Block",
}

// request builds a request context as the proxy would hand it to
// filters: normalized path set, route and request ID known. headers are
// "Name: value" strings.
func request(method, uri, body string, headers ...string) (*fasthttp.RequestCtx, *sdk.Ctx) {
	rc := new(fasthttp.RequestCtx)
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetHost("api.example.com")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	if body != "" {
		req.SetBodyString(body)
		req.Header.SetContentLength(len(body)) // as parsed from the wire
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
// recording upstream (plugintest.Serve). What a guest sees of a request
// body is tested this way: only the server hands a filter a body as a
// client sent it.
func serve(t testing.TB, f *filter) *plugintest.Gateway {
	t.Helper()
	return plugintest.Serve(t, plugintest.Route{Name: "r"}, f)
}

// upstream fills the response as an upstream would have.
func upstream(rc *fasthttp.RequestCtx, status int, body string, headers ...string) {
	rc.Response.SetStatusCode(status)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		rc.Response.Header.Add(k, strings.TrimSpace(v))
	}
	rc.Response.SetBodyString(body)
}

// roundTrip runs a whole request through f as the proxy does: OnRequest,
// then (unless the filter answered) the upstream's response, OnResponse
// and OnLog.
func roundTrip(t testing.TB, f *filter, rc *fasthttp.RequestCtx, c *sdk.Ctx) sdk.Status {
	t.Helper()
	st, err := f.OnRequest(c)
	if err != nil {
		t.Fatalf("OnRequest: %v", err)
	}
	if st == sdk.Continue {
		upstream(rc, 200, "hello", "Content-Type: text/plain", "Server: up")
	}
	if err := f.OnResponse(c); err != nil {
		t.Fatalf("OnResponse: %v", err)
	}
	f.OnLog(c)
	return st
}

// instances counts the live instances of f.
func instances(f *filter) (n int) {
	for i := range f.pool.slots {
		s := &f.pool.slots[i]
		s.mu.Lock()
		if s.inst != nil {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

func newLogger(lb *logBuf) *slog.Logger {
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func statOK(p string) bool { _, err := os.Stat(p); return err == nil }
