package proxy

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
	"go.uber.org/goleak"
)

// panicky and failing are test plugins proving the chain runner's
// contract: a panic or an error becomes a 500 JSON answer, never a dead
// process; Stop short-circuits.
type panicky struct{}

func (panicky) OnRequest(c *sdk.Ctx) (sdk.Status, error) { panic("boom") }

type failing struct{}

func (failing) OnRequest(c *sdk.Ctx) (sdk.Status, error) { return sdk.Continue, errors.New("broken") }

type stopper struct{ code int }

func (s stopper) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	return c.Fail(s.code, "stopped here"), nil
}

// recorder notes its phases in a response header.
type recorder struct{ name string }

func (r recorder) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	c.Request().Header.Add("X-Order", r.name)
	return sdk.Continue, nil
}
func (r recorder) OnResponse(c *sdk.Ctx) error {
	c.Response().Header.Add("X-Resp-Order", r.name)
	return nil
}

func init() {
	sdk.Register(sdk.Factory{Name: "test_panic", New: func(*sdk.Build, json.RawMessage) (sdk.Filter, error) { return panicky{}, nil }})
	sdk.Register(sdk.Factory{Name: "test_fail", New: func(*sdk.Build, json.RawMessage) (sdk.Filter, error) { return failing{}, nil }})
	sdk.Register(sdk.Factory{Name: "test_stop", New: func(_ *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
		var c struct {
			Code int `json:"code"`
		}
		if err := sdk.DecodeConfig(raw, &c); err != nil {
			return nil, err
		}
		if c.Code < 100 {
			return nil, errors.New("code must be an HTTP status")
		}
		return stopper{c.Code}, nil
	}})
	sdk.Register(sdk.Factory{Name: "test_record", New: func(_ *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
		var c struct {
			Name string `json:"name"`
		}
		err := sdk.DecodeConfig(raw, &c)
		return recorder{c.Name}, err
	}})
}

func TestChainContract(t *testing.T) {
	up := startEcho(t, "e1")
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
services: [{name: s, targets: [{url: "UP"}]}]
plugins:
  - {name: test_record, config: {name: global}}
routes:
  - {name: panic, paths: ["/panic"], service: s, plugins: [{name: test_panic}]}
  - {name: fail, paths: ["/fail"], service: s, plugins: [{name: test_fail}]}
  - name: order
    paths: ["/order"]
    service: s
    plugins: [{name: test_record, config: {name: route}}]
  - name: stop
    paths: ["/stop"]
    service: s
    plugins: [{name: test_stop, config: {code: 418}}, {name: test_panic}]
  - name: both
    paths: ["/both"]
    service: s
    plugins: [{name: test_stop, config: {code: 429}}]
`, "UP", up.URL))
	resp, body := g.get("/panic")
	decodeError(t, resp, body, 500)
	resp, body = g.get("/fail")
	decodeError(t, resp, body, 500)
	// Still serving after a panic.
	_, body = g.get("/order")
	r := decodeEcho(t, body)
	// The route's instance of test_record replaces the global one.
	if r.Headers["X-Order"] != "route" {
		t.Fatalf("X-Order upstream %q, want only the route instance", r.Headers["X-Order"])
	}
	resp, body = g.get("/stop")
	if e := decodeError(t, resp, body, 418); e.Error != "stopped here" {
		t.Fatalf("stop: %+v", e)
	}
	// Global instance then the route's stop; the response phase runs for
	// the global filter that ran.
	resp, _ = g.get("/both")
	if resp.StatusCode() != 429 || string(resp.Header.Peek("X-Resp-Order")) != "global" {
		t.Fatalf("both: %d %q", resp.StatusCode(), resp.Header.Peek("X-Resp-Order"))
	}
}

func TestPluginConfigErrorsNamePlace(t *testing.T) {
	cfg := mustParse(t, `
listen: "127.0.0.1:0"
services: [{name: s, targets: [{url: "http://127.0.0.1:9"}]}]
plugins: [{name: test_stop, config: {code: 1}}]
routes:
  - {name: a, paths: ["/a"], service: s, plugins: [{name: test_stop, config: {code: 200, extra: 1}}]}
  - {name: b, paths: ["/b/{id}/{id}"], service: s}
`)
	err := Validate(cfg, "gw.yaml")
	if err == nil {
		t.Fatal("invalid plugin configs accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		`gw.yaml: plugins[0] (test_stop): code must be an HTTP status`,
		`gw.yaml: routes[0].plugins[0] (test_stop): unknown field "extra"`,
		`gw.yaml: routes[1].paths[0]`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

// TestReloadInProcess: 20 Apply calls under constant load: no failed
// request, and every goroutine of retired snapshots ends (goleak).
func TestReloadInProcess(t *testing.T) {
	// fasthttp's own housekeeping goroutines (worker pool reapers, idle
	// connection cleaners, the server date ticker) linger by design for a
	// few seconds; everything of ours must be gone.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/weirgw/weir/proxy.ctxTimeout.func1"))
	up := startEcho(t, "e1")
	cfgText := func(i int) string {
		return strings.NewReplacer("UP", up.URL, "N", string(rune('a'+i))).Replace(`
listen: "127.0.0.1:0"
services:
  - name: s
    targets: [{url: "UP"}]
    health_check: {active: {interval: 100ms, timeout: 50ms}}
routes:
  - {name: main, paths: ["/"], service: s}
  - {name: rN, paths: ["/rN"], service: s}
`)
	}
	g := startGateway(t, cfgText(0))
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://gw/static")
			for n := 0; n < 100000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := g.client.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		if err := g.srv.Apply(mustParse(t, cfgText(i)), "test.yaml"); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A bad config is refused; the running one stays.
	bad := mustParse(t, cfgText(21))
	bad.Routes[0].Service = "nosuch"
	if err := g.srv.Apply(bad, "test.yaml"); err == nil || g.srv.LastReloadOK() {
		t.Fatal("invalid config applied")
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d ok, %d failed during reloads", ok.Load(), failed.Load())
	}
	_ = g.srv.Shutdown(ctxTimeout(5 * time.Second))
	_ = g.ln.Close()
	g.client.CloseIdleConnections()
	up.srv.Shutdown()
	time.Sleep(100 * time.Millisecond)
}
