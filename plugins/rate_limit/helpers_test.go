package ratelimit

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/testclock"
	"github.com/weirgw/weir/internal/testredis"
	"github.com/weirgw/weir/sdk"
)

// reqSpec describes a test request.
type reqSpec struct {
	consumer string // "" = anonymous
	ip       string // client address, default 192.0.2.1
	route    string
	headers  map[string]string
}

// testReq is a reusable request context for driving a filter.
type testReq struct {
	rc   fasthttp.RequestCtx
	cons *sdk.Consumer
	spec reqSpec
}

func newTestReq(s reqSpec) *testReq {
	r := &testReq{spec: s}
	var req fasthttp.Request
	req.SetRequestURI("http://example.com/x")
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	ip := s.ip
	if ip == "" {
		ip = "192.0.2.1"
	}
	r.rc.Init(&req, &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}, nil)
	if s.consumer != "" {
		r.cons = &sdk.Consumer{Name: s.consumer}
	}
	return r
}

// result is what one OnRequest produced.
type result struct {
	status  sdk.Status
	err     error
	code    int
	body    string
	headers map[string]string
}

// do runs f.OnRequest on a fresh Ctx and applies the deferred headers the
// way the proxy does.
func (r *testReq) do(f sdk.Filter) result {
	r.rc.Response.Reset()
	c := sdk.AcquireCtx(&r.rc)
	defer sdk.ReleaseCtx(c)
	c.Route = r.spec.route
	c.SetPath([]byte("/x"))
	if r.cons != nil {
		c.SetConsumer(r.cons, "k1")
	}
	st, err := f.OnRequest(c)
	c.ApplyResponseHeaders()
	res := result{status: st, err: err, code: r.rc.Response.StatusCode(), body: string(r.rc.Response.Body()),
		headers: map[string]string{}}
	for _, h := range []string{hdrLimit, hdrRemaining, hdrReset, hdrRetryAfter} {
		if v := r.rc.Response.Header.Peek(h); v != nil {
			res.headers[h] = string(v)
		}
	}
	return res
}

// decideOnly runs OnRequest without building a result (hot loops). It
// resets only the status code: Response.Reset would hand the body buffer
// back to its pool, and sdk.WriteError then allocates a new one (the sdk
// issue noted in README.md), which is not what this plugin costs.
func (r *testReq) decideOnly(f sdk.Filter) (allowed bool, code int, err error) {
	r.rc.Response.SetStatusCode(200)
	c := sdk.AcquireCtx(&r.rc)
	c.Route = r.spec.route
	if r.cons != nil {
		c.SetConsumer(r.cons, "k1")
	}
	st, err := f.OnRequest(c)
	sdk.ReleaseCtx(c)
	if err != nil {
		return false, 500, err
	}
	code = r.rc.Response.StatusCode()
	return st == sdk.Continue, code, nil
}

// mustNew builds a filter from a JSON config, failing the test on error.
func mustNew(t testing.TB, b *sdk.Build, cfgJSON string) *filter {
	t.Helper()
	if b == nil {
		b = &sdk.Build{Route: "r1"}
	}
	f, err := New(b, json.RawMessage(cfgJSON))
	if err != nil {
		t.Fatalf("New(%s): %v", cfgJSON, err)
	}
	return f.(*filter)
}

// newClient connects a rueidis client to a private Redis, the way the
// gateway's shared client is built (auto-pipelining on, no client cache).
func newClient(t testing.TB, s *testredis.Server) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  []string{s.Addr},
		DisableCache: true,
		Dialer:       net.Dialer{Timeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatalf("rueidis client for %s: %v", s.Addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

// newFakeClock is a settable monotonic clock (UnixNano) for
// deterministic tests, an hour after the epoch.
func newFakeClock() *testclock.Clock { return testclock.New(time.Unix(0, 0).Add(time.Hour)) }

// counterFrom returns a reader of how much the named counter has grown
// since the call. The metrics set is global to the process: with -count=N,
// or a route name reused by another test, an absolute read counts the
// earlier runs too.
func counterFrom(name string) func() uint64 {
	c := metrics.GetOrCreateCounter(name)
	base := c.Get()
	return func() uint64 { return c.Get() - base }
}
