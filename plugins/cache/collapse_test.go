package cache

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// loopbackOrigin is a real fasthttp server on 127.0.0.1 that counts
// requests and answers after delay.
type loopbackOrigin struct {
	addr  string
	hits  atomic.Int32
	delay atomic.Int64
	cc    string
	srv   *fasthttp.Server
	hc    *fasthttp.HostClient
}

func startOrigin(t *testing.T, delay time.Duration, cc string) *loopbackOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &loopbackOrigin{addr: ln.Addr().String(), cc: cc}
	o.delay.Store(int64(delay))
	o.srv = &fasthttp.Server{Handler: func(rc *fasthttp.RequestCtx) {
		o.hits.Add(1)
		time.Sleep(time.Duration(o.delay.Load()))
		rc.Response.Header.Set("Cache-Control", o.cc)
		rc.SetBodyString("shared body")
	}}
	go func() { _ = o.srv.Serve(ln) }()
	o.hc = &fasthttp.HostClient{Addr: o.addr, MaxConns: 200}
	t.Cleanup(func() { _ = o.srv.Shutdown() })
	return o
}

// proxyOnce simulates the proxy for one request: OnRequest, the forward
// to the loopback origin when not answered, OnResponse, OnLog.
func (o *loopbackOrigin) proxyOnce(t *testing.T, f *Filter, path string) (xcache, body string) {
	rc := new(fasthttp.RequestCtx)
	rc.Request.SetRequestURI("http://" + o.addr + path)
	c := sdk.AcquireCtx(rc)
	defer sdk.ReleaseCtx(c)
	c.SetPath([]byte(path))
	st, err := f.OnRequest(c)
	if err != nil {
		t.Error(err)
		return "", ""
	}
	if st == sdk.Continue {
		if err := o.hc.DoTimeout(&rc.Request, &rc.Response, 10*time.Second); err != nil {
			t.Error(err)
			return "", ""
		}
	}
	_ = f.OnResponse(c)
	c.ApplyResponseHeaders()
	f.OnLog(c)
	return string(rc.Response.Header.Peek("X-Cache-Status")), string(rc.Response.Body())
}

func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			fn(i)
		}(i)
	}
	close(start)
	wg.Wait()
}

func TestCollapsingRealUpstream(t *testing.T) {
	o := startOrigin(t, 200*time.Millisecond, "max-age=60")
	f, _ := newTestFilter(t, `{}`)
	f.now = time.Now
	var mu sync.Mutex
	counts := map[string]int{}
	concurrently(50, func(int) {
		x, body := o.proxyOnce(t, f, "/collapse")
		if body != "shared body" {
			t.Errorf("body %q", body)
		}
		mu.Lock()
		counts[x]++
		mu.Unlock()
	})
	if n := o.hits.Load(); n != 1 {
		t.Fatalf("origin fetched %d times for 50 concurrent misses, want 1", n)
	}
	if counts["MISS"] != 1 || counts["HIT"] != 49 {
		t.Fatalf("results %v, want 1 MISS and 49 HIT", counts)
	}
}

func TestCollapsingUncacheableFansOut(t *testing.T) {
	o := startOrigin(t, 100*time.Millisecond, "no-store")
	f, _ := newTestFilter(t, `{}`)
	f.now = time.Now
	concurrently(10, func(int) {
		if _, body := o.proxyOnce(t, f, "/private"); body != "shared body" {
			t.Errorf("body %q", body)
		}
	})
	if n := o.hits.Load(); n != 10 {
		t.Fatalf("origin saw %d requests, want 10 (followers of an uncacheable response go upstream)", n)
	}
	// The pass mark lets the next wave go upstream at once instead of
	// queueing behind a leader.
	o.delay.Store(int64(300 * time.Millisecond))
	start := time.Now()
	concurrently(5, func(int) { o.proxyOnce(t, f, "/private") })
	if d := time.Since(start); d > 550*time.Millisecond {
		t.Fatalf("second wave took %s: requests waited for each other", d)
	}
}

func TestCollapsingWaitIsBounded(t *testing.T) {
	o := startOrigin(t, 400*time.Millisecond, "max-age=60")
	f, _ := newTestFilter(t, `{"lock_timeout":"50ms"}`)
	f.now = time.Now
	concurrently(5, func(int) { o.proxyOnce(t, f, "/slow") })
	if n := o.hits.Load(); n != 5 {
		t.Fatalf("origin saw %d requests, want 5 (followers give up after lock_timeout)", n)
	}
}

func TestCollapsingDisabled(t *testing.T) {
	o := startOrigin(t, 100*time.Millisecond, "max-age=60")
	f, _ := newTestFilter(t, `{"collapse":false}`)
	f.now = time.Now
	concurrently(5, func(int) { o.proxyOnce(t, f, "/nc") })
	if n := o.hits.Load(); n != 5 {
		t.Fatalf("origin saw %d requests, want 5", n)
	}
}

func TestAbandonedFlightIsTakenOver(t *testing.T) {
	g := newFlightGroup()
	key := []byte("k")
	f1, leader, _ := g.join(key, 0, time.Second)
	if !leader {
		t.Fatal("first join does not lead")
	}
	if _, leader, _ := g.join(key, int64(500*time.Millisecond), time.Second); leader {
		t.Fatal("second join leads a live flight")
	}
	f2, leader, _ := g.join(key, int64(2*time.Second), time.Second)
	if !leader || f2 == f1 {
		t.Fatal("a flight older than the timeout was not taken over")
	}
	// The old leader finishing late must not end the new flight.
	g.finish(key, f1, true, int64(2*time.Second))
	if !g.busy(key, int64(2*time.Second), time.Second) {
		t.Fatal("late finish removed the new flight")
	}
	g.finish(key, f2, false, int64(2*time.Second))
	if _, _, pass := g.join(key, int64(3*time.Second), time.Second); !pass {
		t.Fatal("no pass mark after an uncacheable response")
	}
	if _, _, pass := g.join(key, int64(2*time.Second+hitForPass+1), time.Second); pass {
		t.Fatal("pass mark outlived hitForPass")
	}
}

func TestOnLogReleasesAbandonedLeader(t *testing.T) {
	f, _ := newTestFilter(t, `{}`)
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI(u)
	c := sdk.AcquireCtx(&rc)
	c.SetPath(rc.Request.URI().Path())
	if st, _ := f.OnRequest(c); st != sdk.Continue {
		t.Fatal("not a miss")
	}
	// The proxy failed before OnResponse; OnLog still runs.
	f.OnLog(c)
	sdk.ReleaseCtx(c)
	if f.scope.Load().flights.busy([]byte("api.example.com/items/1"), f.now().UnixNano(), time.Minute) {
		t.Fatal("flight still held after OnLog")
	}
}
