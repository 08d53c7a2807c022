package responsetransformer

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// fakeCache is the smallest cache that behaves like plugins/cache towards
// its neighbours: a lookup in OnRequest that answers a hit itself (body
// shared with SetBodyRaw, sdk.Stop), and a store in OnResponse of what
// reaches it after a miss.
type fakeCache struct {
	stored     bool
	status     int
	header     fasthttp.ResponseHeader
	body       []byte
	hits, miss int
}

var missKey = new(byte)

func (fc *fakeCache) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	if fc.stored {
		fc.hits++
		resp := c.Response()
		fc.header.CopyTo(&resp.Header)
		resp.SetStatusCode(fc.status)
		resp.SetBodyRaw(fc.body)
		resp.Header.Set("X-Cache-Status", "HIT")
		return sdk.Stop, nil
	}
	fc.miss++
	c.SetValue(missKey, true)
	return sdk.Continue, nil
}

func (fc *fakeCache) OnResponse(c *sdk.Ctx) error {
	if c.Value(missKey) == nil {
		return nil // a hit: nothing to store
	}
	resp := c.Response()
	resp.Header.Set("X-Cache-Status", "MISS")
	resp.Header.CopyTo(&fc.header)
	fc.header.Del("X-Cache-Status")
	fc.status = resp.StatusCode()
	fc.body = append([]byte(nil), resp.Body()...)
	fc.stored = true
	return nil
}

// countingTransformer counts the response phases the transformer ran.
type countingTransformer struct {
	*Filter
	responses int
}

func (ct *countingTransformer) OnResponse(c *sdk.Ctx) error {
	ct.responses++
	return ct.Filter.OnResponse(c)
}

// chain drives filters exactly as proxy/handler.go does: request phases in
// order until one stops (runRequestFilters), the upstream when none did
// (forward), then the response phases of the filters that ran, in reverse
// (runResponseFilters), then the deferred headers (finish).
func chain(t *testing.T, filters []sdk.Filter, upstream *fasthttp.HostClient, rc *fasthttp.RequestCtx) {
	t.Helper()
	c := plugintest.Acquire(rc)
	defer sdk.ReleaseCtx(c)
	ran, stopped := 0, false
	for ran < len(filters) {
		f := filters[ran]
		ran++
		st, err := f.OnRequest(c)
		if err != nil {
			t.Fatal(err)
		}
		if st == sdk.Stop {
			c.MarkStopped()
			stopped = true
			break
		}
	}
	if !stopped {
		rc.Request.SetHost(upstream.Addr)
		if err := upstream.DoTimeout(&rc.Request, &rc.Response, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for i := ran - 1; i >= 0; i-- {
		if rf, ok := filters[i].(sdk.ResponseFilter); ok {
			if err := rf.OnResponse(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.ApplyResponseHeaders()
}

const upstreamBody = `{"id":7,"name":"n","password":"x"}`
const clientBody = `{"id":7,"name":"n","meta":{"source":"weir"}}`
const transformerConfig = `{"remove":{"headers":["X-Debug"]},"set":{"headers":{"X-Env":"prod"}},
	"json":{"set":{"meta.source":"weir"},"remove":["password"]}}`

// startUpstream serves upstreamBody on loopback and counts requests and
// the Accept-Encoding each carried.
func startUpstream(t *testing.T) (*fasthttp.HostClient, *atomic.Int32, *atomic.Value) {
	t.Helper()
	var calls atomic.Int32
	var ae atomic.Value
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		ae.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("X-Debug", "upstream internals")
		w.Write([]byte(upstreamBody)) //nolint:errcheck
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return &fasthttp.HostClient{Addr: ln.Addr().String()}, &calls, &ae
}

func get(t *testing.T, filters []sdk.Filter, up *fasthttp.HostClient) *fasthttp.RequestCtx {
	rc := new(fasthttp.RequestCtx)
	rc.Request.SetRequestURI("/users/7")
	rc.Request.Header.Set("Accept-Encoding", "gzip, br")
	chain(t, filters, up, rc)
	return rc
}

func assertTransformed(t *testing.T, what string, rc *fasthttp.RequestCtx) {
	t.Helper()
	resp := &rc.Response
	if string(resp.Body()) != clientBody || resp.Header.ContentLength() != len(clientBody) {
		t.Errorf("%s: body %s (Content-Length %d), want %s", what, resp.Body(), resp.Header.ContentLength(), clientBody)
	}
	if string(resp.Header.Peek("X-Env")) != "prod" || len(resp.Header.Peek("X-Debug")) != 0 {
		t.Errorf("%s: headers not transformed:\n%s", what, resp.Header.String())
	}
	if string(resp.Header.Peek("ETag")) != `"v1"` {
		t.Errorf("%s: ETag %s", what, resp.Header.Peek("ETag"))
	}
}

// TestCacheAfterTransformer is the recommended order, response_transformer
// listed before cache: the response phases run cache first, so the cache
// stores the upstream's response, and every response the client gets —
// the miss and each hit — passes through the transformer on its way out.
func TestCacheAfterTransformer(t *testing.T) {
	up, calls, ae := startUpstream(t)
	rt := &countingTransformer{Filter: mustNew(t, usersRoute(), transformerConfig)}
	cache := &fakeCache{}
	filters := []sdk.Filter{rt, cache}

	miss := get(t, filters, up)
	assertTransformed(t, "miss", miss)
	if got := ae.Load(); got != "" {
		t.Errorf("upstream got Accept-Encoding %q; the transformer should have removed it", got)
	}
	if string(cache.body) != upstreamBody || string(cache.header.Peek("X-Debug")) != "upstream internals" {
		t.Errorf("stored %s / X-Debug %q, want the upstream's response", cache.body, cache.header.Peek("X-Debug"))
	}

	for i := range 2 {
		hit := get(t, filters, up)
		assertTransformed(t, "hit", hit)
		if string(hit.Response.Header.Peek("X-Cache-Status")) != "HIT" {
			t.Fatalf("hit %d: X-Cache-Status %q", i, hit.Response.Header.Peek("X-Cache-Status"))
		}
	}
	if calls.Load() != 1 || cache.hits != 2 || rt.responses != 3 {
		t.Fatalf("upstream calls %d, hits %d, transformer responses %d; want 1, 2, 3", calls.Load(), cache.hits, rt.responses)
	}
	if string(cache.body) != upstreamBody {
		t.Fatalf("serving hits changed the stored body to %s", cache.body)
	}
}

// TestCacheBeforeTransformer is the other order, cache listed first: the
// transformer's response phase runs before the cache's, so the cache
// stores the transformed response, and a hit stops the chain before the
// transformer, which never sees it — the stored copy is already what the
// client should get.
func TestCacheBeforeTransformer(t *testing.T) {
	up, calls, _ := startUpstream(t)
	rt := &countingTransformer{Filter: mustNew(t, usersRoute(), transformerConfig)}
	cache := &fakeCache{}
	filters := []sdk.Filter{cache, rt}

	miss := get(t, filters, up)
	assertTransformed(t, "miss", miss)
	if string(cache.body) != clientBody || len(cache.header.Peek("X-Debug")) != 0 {
		t.Errorf("stored %s / X-Debug %q, want the transformed response", cache.body, cache.header.Peek("X-Debug"))
	}
	hit := get(t, filters, up)
	assertTransformed(t, "hit", hit)
	if calls.Load() != 1 || cache.hits != 1 || rt.responses != 1 {
		t.Fatalf("upstream calls %d, hits %d, transformer responses %d; want 1, 1, 1", calls.Load(), cache.hits, rt.responses)
	}
}
