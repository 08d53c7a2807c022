package main

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serve starts a fasthttp server on a free loopback port for the test.
func serve(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

func TestBuildRequest(t *testing.T) {
	got := string(buildRequest("127.0.0.1:9", "/static", map[string]string{"X-B": "2", "X-A": "1"}, nil))
	want := "GET /static HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUser-Agent: weirbench\r\nX-A: 1\r\nX-B: 2\r\n\r\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	got = string(buildRequest("127.0.0.1:9", "/static", nil, []byte("hello")))
	want = "POST /static HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUser-Agent: weirbench\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	if got != want {
		t.Errorf("POST: got %q\nwant %q", got, want)
	}
}

func TestOpenLoopHoldsTheRate(t *testing.T) {
	var hdr atomic.Value
	addr := serve(t, func(rc *fasthttp.RequestCtx) {
		hdr.Store(string(rc.Request.Header.Peek("X-Key")))
		if string(rc.Path()) == "/teapot" {
			rc.SetStatusCode(418)
		}
		rc.SetBodyString("ok")
	})
	res, err := runLoad(loadSpec{Targets: []string{addr}, Path: "/", Headers: map[string]string{"X-Key": "k"},
		Rate: 2000, Duration: 500 * time.Millisecond, Conns: 8})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "open" || res.Scheduled != 1000 {
		t.Fatalf("mode %s scheduled %d, want open 1000", res.Mode, res.Scheduled)
	}
	if res.Completed+res.Errors+res.Unsent != 1000 || res.OK < 990 {
		t.Errorf("completed %d ok %d errors %d unsent %d (first error %s)", res.Completed, res.OK, res.Errors, res.Unsent, res.FirstError)
	}
	if res.Status["200"] != res.OK {
		t.Errorf("status %v", res.Status)
	}
	// The schedule spans 0.5 s: a run that kept up is not diluted by the
	// grace period.
	if res.Seconds < 0.49 || res.Seconds > 1.2 || res.RPS < 800 || res.RPS > 2100 {
		t.Errorf("seconds %.3f rps %.0f", res.Seconds, res.RPS)
	}
	if !(res.P50us > 0 && res.P50us <= res.P99us && res.P99us <= res.P999us && res.P999us <= res.MaxUs) {
		t.Errorf("percentiles out of order: %+v", res)
	}
	if hdr.Load() != "k" {
		t.Errorf("header not sent: %v", hdr.Load())
	}

	res, err = runLoad(loadSpec{Targets: []string{addr}, Path: "/teapot", Rate: 500, Duration: 200 * time.Millisecond, Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Non2xx != 100 || res.OK != 0 || res.Status["418"] != 100 {
		t.Errorf("non-2xx %d ok %d status %v", res.Non2xx, res.OK, res.Status)
	}
}

// TestOpenLoopCountsTheQueueBehindAStall is the point of the open loop:
// one connection, one 200 ms stall. A closed-loop tool would record one
// slow request; measured from the intended send times, every request
// scheduled during the stall waited, so about a fifth of them are slow.
func TestOpenLoopCountsTheQueueBehindAStall(t *testing.T) {
	var n atomic.Int64
	addr := serve(t, func(rc *fasthttp.RequestCtx) {
		if n.Add(1) == 100 {
			time.Sleep(200 * time.Millisecond)
		}
		rc.SetBodyString("ok")
	})
	res, err := runLoad(loadSpec{Targets: []string{addr}, Path: "/", Rate: 1000, Duration: time.Second, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK < 990 {
		t.Fatalf("ok %d errors %d (%s)", res.OK, res.Errors, res.FirstError)
	}
	if res.P90us < 50_000 {
		t.Errorf("p90 = %.0f µs; the requests queued behind the stall must show (want > 50 ms)", res.P90us)
	}
	if res.P99us < 150_000 {
		t.Errorf("p99 = %.0f µs, want > 150 ms", res.P99us)
	}
	if res.SendLagP99 < 100_000 {
		t.Errorf("send lag p99 = %.0f µs: the generator must report that it sent late", res.SendLagP99)
	}
}

func TestClosedLoopAndSpreadOverTargets(t *testing.T) {
	var a, b atomic.Int64
	addrA := serve(t, func(rc *fasthttp.RequestCtx) { a.Add(1); rc.SetBodyString("a") })
	addrB := serve(t, func(rc *fasthttp.RequestCtx) { b.Add(1); rc.SetBodyString("b") })
	res, err := runLoad(loadSpec{Targets: []string{addrA, addrB}, Path: "/", Duration: 300 * time.Millisecond, Conns: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "closed" || res.OK == 0 || res.RPS <= 0 || res.Errors != 0 {
		t.Fatalf("%+v", res)
	}
	if a.Load() == 0 || b.Load() == 0 || a.Load()+b.Load() != res.Completed {
		t.Errorf("a %d b %d completed %d", a.Load(), b.Load(), res.Completed)
	}
}

func TestLoadErrors(t *testing.T) {
	// A port nobody listens on: every request fails, none hangs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	res, err := runLoad(loadSpec{Targets: []string{dead}, Path: "/", Rate: 200, Duration: 100 * time.Millisecond, Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 20 || res.OK != 0 || !strings.Contains(res.FirstError, "connection refused") {
		t.Errorf("errors %d ok %d first %q", res.Errors, res.OK, res.FirstError)
	}

	for _, tt := range []struct {
		spec loadSpec
		err  string
	}{
		{loadSpec{Path: "/", Duration: time.Second, Conns: 1}, "load: no targets"},
		{loadSpec{Targets: []string{dead}, Duration: time.Second}, "load: conns must be >= 1"},
		{loadSpec{Targets: []string{dead}, Conns: 1}, "load: duration must be > 0"},
		{loadSpec{Targets: []string{dead}, Conns: 1, Duration: time.Second, Rate: -1}, "load: rate must be >= 0"},
	} {
		if _, err := runLoad(tt.spec); err == nil || err.Error() != tt.err {
			t.Errorf("runLoad(%+v) = %v, want %q", tt.spec, err, tt.err)
		}
	}
}

func TestConnectionCloseIsFollowed(t *testing.T) {
	var conns atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler: func(rc *fasthttp.RequestCtx) { rc.SetConnectionClose(); rc.SetBodyString("x") },
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	res, err := runLoad(loadSpec{Targets: []string{ln.Addr().String()}, Path: "/", Rate: 100, Duration: 200 * time.Millisecond, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 20 || res.Errors != 0 {
		t.Errorf("ok %d errors %d (%s)", res.OK, res.Errors, res.FirstError)
	}
	if conns.Load() != 20 {
		t.Errorf("%d connections for 20 requests answered with Connection: close", conns.Load())
	}
}

func TestOpenLoopSendsOnTime(t *testing.T) {
	addr := serve(t, func(rc *fasthttp.RequestCtx) { rc.SetBodyString("ok") })
	// 1,000/s is one request a millisecond: with time.Sleep's millisecond
	// resolution about half would start late by up to a millisecond. The
	// timerfd schedule must start the median request within 200 µs of its
	// due time (the median, so a few preemptions on a busy machine do not
	// fail the test).
	res, err := runLoad(loadSpec{Targets: []string{addr}, Path: "/", Rate: 1000, Duration: 300 * time.Millisecond, Conns: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 300 {
		t.Fatalf("ok %d errors %d (%s)", res.OK, res.Errors, res.FirstError)
	}
	if res.SendLagP50 > 200 {
		t.Errorf("median send lag %.0f µs, want < 200 µs", res.SendLagP50)
	}
}
