// Package plugintest is what the plugins' tests share: building a filter
// from a config, sending it a request the way the proxy does, reading back
// what happened, and checking config errors and allocation counts. It is
// imported by _test files only.
//
// NewCtx, Do and Run hand a filter a RequestCtx built in memory, without a
// body: enough for headers, query and identity. What a filter does with a
// request body, or with anything the proxy changes between the phases
// (the Host field rewritten for the upstream, the answer it forwards), is
// tested behind the real proxy server with Serve (see Gateway): only the
// server hands a body over as a client sent it, buffered or streamed by
// the proxy's rule, and only its handler rewrites the request as it goes
// upstream.
package plugintest

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/weirgw/weir/sdk"
)

// NewFunc is a plugin's New (sdk.Factory.New).
type NewFunc = func(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error)

// New builds a filter with newf from b and cfg and returns it as F (the
// plugin's own type, or sdk.Filter), failing the test when New refuses the
// config. A filter that is an sdk.Closer is closed when the test ends.
func New[F sdk.Filter](t testing.TB, newf NewFunc, b *sdk.Build, cfg string) F {
	t.Helper()
	f, err := newf(b, json.RawMessage(cfg))
	if err != nil {
		t.Fatalf("New(%s): %v", cfg, err)
	}
	if cl, ok := f.(sdk.Closer); ok {
		t.Cleanup(func() { _ = cl.Close() })
	}
	return f.(F)
}

// WantErr fails the test unless err's text is exactly want; want "" means
// no error.
func WantErr(t testing.TB, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want %q", want)
	case want != "" && err.Error() != want:
		t.Fatalf("error\n got %q\nwant %q", err.Error(), want)
	}
}

// WantErrContaining is WantErr for a part of the error's text.
func WantErrContaining(t testing.TB, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("want error containing %q, got none", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("want error containing %q, got %q", want, err.Error())
	}
}

// ConfigCase is one row of a config table test.
type ConfigCase struct {
	Name string
	// Build is what New gets; nil is the table's default.
	Build *sdk.Build
	Cfg   string
	// Err is the exact error New must return; "" means the config is
	// valid.
	Err string
}

// Configs runs each case as a subtest: newf(case.Build, or def when nil,
// case.Cfg) must return exactly case.Err.
func Configs(t *testing.T, newf NewFunc, def *sdk.Build, cases []ConfigCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			b := tc.Build
			if b == nil {
				b = def
			}
			_, err := newf(b, json.RawMessage(tc.Cfg))
			WantErr(t, err, tc.Err)
		})
	}
}

// WantRegistered fails the test unless a plugin is registered as name.
func WantRegistered(t testing.TB, name string) {
	t.Helper()
	if _, ok := sdk.Lookup(name); !ok {
		t.Fatalf("%s is not registered", name)
	}
}

// Request is a client request as the proxy hands it to the filters.
type Request struct {
	// URI is the request URI, a path ("/x?a=1") or absolute; "" is "/".
	URI string
	// Headers are set, one value each.
	Headers map[string]string
	// HeaderLines are added in order, as name, value pairs: a name may
	// repeat (several X-Forwarded-For lines).
	HeaderLines []string
	// Peer is the client's IP address (the TCP peer); "" is 127.0.0.1.
	Peer string
	// Path is the normalized path (c.Path()); "" is the URI's path.
	Path string
	// Params are the route's parameters, as name, value pairs.
	Params []string
	// RequestID is the gateway's request ID (it appears in error bodies).
	RequestID string
	// Consumer and Scopes are an identity set by an earlier plugin;
	// Credential goes with Consumer.
	Consumer   *sdk.Consumer
	Credential string
	Scopes     []string
}

// NewCtx builds the request context of r and the sdk.Ctx the filters see.
// The caller releases c with sdk.ReleaseCtx; rc stays the caller's.
func NewCtx(r Request) (*fasthttp.RequestCtx, *sdk.Ctx) {
	rc := newRequestCtx(r.URI, r.Headers, r.HeaderLines, r.Peer)
	c := acquire(rc, r.Path, r.Params)
	if r.RequestID != "" {
		c.SetRequestID([]byte(r.RequestID))
	}
	if r.Consumer != nil {
		c.SetConsumer(r.Consumer, r.Credential)
	}
	for _, s := range r.Scopes {
		c.AddScope(s)
	}
	return rc, c
}

// NewRequestCtx is NewCtx for a plain request: uri with headers, routed
// as path ("" is the URI's path). The headers map stays where the caller
// made it (a map in a Request goes to the heap with everything else NewCtx
// keeps), so a benchmark that builds a request per run measures only the
// filter.
func NewRequestCtx(uri, path string, headers map[string]string) (*fasthttp.RequestCtx, *sdk.Ctx) {
	rc := newRequestCtx(uri, headers, nil, "")
	return rc, acquire(rc, path, nil)
}

func newRequestCtx(uri string, headers map[string]string, lines []string, peer string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.SetRequestURI(uri)
	if uri == "" {
		req.SetRequestURI("/")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	for i := 0; i+1 < len(lines); i += 2 {
		req.Header.Add(lines[i], lines[i+1])
	}
	ip := net.IPv4(127, 0, 0, 1)
	if peer != "" {
		ip = net.ParseIP(peer)
	}
	rc := new(fasthttp.RequestCtx)
	rc.Init(&req, &net.TCPAddr{IP: ip, Port: 40000}, nil)
	return rc
}

// acquire returns rc's sdk.Ctx with the normalized path (path, or else the
// URI's) and the route parameters set.
func acquire(rc *fasthttp.RequestCtx, path string, params []string) *sdk.Ctx {
	c := sdk.AcquireCtx(rc)
	if path != "" {
		// Not parsed from the URI, so that building a request costs no
		// more than what the filter itself parses.
		c.SetPath([]byte(path))
	} else {
		c.SetPath(rc.Request.URI().Path())
	}
	for i := 0; i+1 < len(params); i += 2 {
		c.AddParam(params[i], []byte(params[i+1]))
	}
	return c
}

// Acquire returns the sdk.Ctx of rc as the proxy prepares it: the
// normalized path set from the request URI and the route parameters
// (name, value pairs) added. The caller releases it with sdk.ReleaseCtx.
func Acquire(rc *fasthttp.RequestCtx, params ...string) *sdk.Ctx {
	return acquire(rc, "", params)
}

// Do sends r through f.OnRequest as the proxy does, then applies the
// deferred response headers; an error from OnRequest fails the test. c is
// released when the test ends, so it may be read until then.
func Do(t testing.TB, f sdk.Filter, r Request) (*fasthttp.RequestCtx, *sdk.Ctx, sdk.Status) {
	t.Helper()
	rc, c := NewCtx(r)
	t.Cleanup(func() { sdk.ReleaseCtx(c) })
	st, err := f.OnRequest(c)
	if err != nil {
		t.Fatalf("OnRequest: %v", err)
	}
	c.ApplyResponseHeaders()
	return rc, c, st
}

// Result is what one request through a filter produced, copied out of the
// request context.
type Result struct {
	Status sdk.Status
	// Code, Body and Challenge (WWW-Authenticate) are the response's;
	// Code is 200 when the filter let the request go on.
	Code      int
	Body      string
	Challenge string
	// Consumer, Credential and Scopes are the identity the request ended
	// with.
	Consumer   *sdk.Consumer
	Credential string
	Scopes     []string
	// RequestURI and RequestHeaders are the request as it would go
	// upstream (one value per header name, the last).
	RequestURI     string
	RequestHeaders map[string]string
}

// Run is Do, with the outcome copied into a Result.
func Run(t testing.TB, f sdk.Filter, r Request) Result {
	t.Helper()
	rc, c := NewCtx(r)
	defer sdk.ReleaseCtx(c)
	st, err := f.OnRequest(c)
	if err != nil {
		t.Fatalf("OnRequest: %v", err)
	}
	c.ApplyResponseHeaders()
	res := Result{
		Status:         st,
		Code:           rc.Response.StatusCode(),
		Body:           string(rc.Response.Body()),
		Challenge:      string(rc.Response.Header.Peek("WWW-Authenticate")),
		Consumer:       c.Consumer(),
		Credential:     c.Credential(),
		Scopes:         append([]string(nil), c.Scopes()...),
		RequestURI:     string(rc.Request.URI().RequestURI()),
		RequestHeaders: map[string]string{},
	}
	for k, v := range rc.Request.Header.All() {
		res.RequestHeaders[string(k)] = string(v)
	}
	return res
}

// WantAccepted fails the test unless the filter let the request go on.
func WantAccepted(t testing.TB, r Result) {
	t.Helper()
	if r.Status != sdk.Continue {
		t.Fatalf("want the request accepted, got %d %s (challenge %q)", r.Code, r.Body, r.Challenge)
	}
}

// WantRefused fails the test unless the filter answered code with a body
// containing bodyPart, without identifying a consumer.
func WantRefused(t testing.TB, r Result, code int, bodyPart string) {
	t.Helper()
	if r.Status != sdk.Stop || r.Code != code || !strings.Contains(r.Body, bodyPart) {
		t.Fatalf("want %d %q, got status %v code %d body %s", code, bodyPart, r.Status, r.Code, r.Body)
	}
	if r.Consumer != nil {
		t.Fatalf("refused request identified consumer %q", r.Consumer.Name)
	}
}
