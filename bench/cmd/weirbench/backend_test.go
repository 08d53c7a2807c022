package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serveBackend runs srv's loop in the background until the test ends.
func serveBackend(t *testing.T) *backendServer {
	t.Helper()
	srv, err := listenBackend("127.0.0.1:0", "test")
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		events := make([]unix.EpollEvent, 64)
		for !stop.Load() {
			n, err := unix.EpollWait(srv.epfd, events, 10)
			if err != nil && err != unix.EINTR {
				t.Errorf("epoll_wait: %v", err)
				return
			}
			for _, ev := range events[:max(n, 0)] {
				srv.handle(ev)
			}
		}
	}()
	t.Cleanup(func() {
		stop.Store(true)
		<-done
		srv.close()
	})
	return srv
}

// exchange writes raw on a new connection and reads want responses.
func exchange(t *testing.T, addr, raw string, want int) ([]*http.Response, []string, *bufio.Reader, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for i := 0; i < want; i++ {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i, err)
		}
		resps, bodies = append(resps, r), append(bodies, string(b))
	}
	return resps, bodies, br, c
}

func TestBackendAnswers(t *testing.T) {
	srv := serveBackend(t)
	// Pipelined: a GET, a POST with a body that must be skipped whole, an
	// unknown path, and a request split across the headers' end.
	raw := "GET /static HTTP/1.1\r\nHost: b\r\n\r\n" +
		"POST /static1k?x=1 HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\nGET /" +
		"GET /nope HTTP/1.1\r\nhost: b\r\n\r\n" +
		"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n"
	resps, bodies, _, _ := exchange(t, srv.addr, raw, 4)
	for i, want := range []struct {
		status int
		body   string
	}{{200, strings.Repeat("x", 64)}, {200, strings.Repeat("x", 1024)}, {404, "not found"}, {200, "ok"}} {
		r := resps[i]
		if r.StatusCode != want.status || bodies[i] != want.body || r.Close {
			t.Errorf("answer %d: %d %q close=%v; want %d %q", i, r.StatusCode, bodies[i], r.Close, want.status, want.body)
		}
		if r.Header.Get("Date") == "" || r.Header.Get("X-Echo-Server") != "test" || r.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("answer %d headers: %v", i, r.Header)
		}
	}
	if _, err := http.ParseTime(resps[0].Header.Get("Date")); err != nil {
		t.Errorf("Date: %v", err)
	}
}

func TestBackendClosesWhenAsked(t *testing.T) {
	srv := serveBackend(t)
	for _, tc := range []struct{ name, raw string }{
		{"connection close", "GET /static HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"},
		{"HTTP/1.0", "GET /static HTTP/1.0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resps, _, br, _ := exchange(t, srv.addr, tc.raw, 1)
			if resps[0].StatusCode != 200 || !resps[0].Close {
				t.Fatalf("status %d close=%v", resps[0].StatusCode, resps[0].Close)
			}
			if n, err := br.ReadByte(); err != io.EOF {
				t.Errorf("connection still open after the answer: %v %v", n, err)
			}
		})
	}
}

func TestBackendRefusesWhatItCannotFrame(t *testing.T) {
	srv := serveBackend(t)
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		{"chunked body", "POST /static HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"bad request line", "GET /static\r\nHost: b\r\n\r\n", 400},
		{"bad length", "POST /static HTTP/1.1\r\nContent-Length: -3\r\n\r\n", 400},
		// One byte past the limit, all of it read when the backend gives
		// up: no unread bytes turn its close into a reset.
		{"header too large", bigHead(beMaxHeader + 1), 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resps, _, br, _ := exchange(t, srv.addr, tc.raw, 1)
			if resps[0].StatusCode != tc.status || !resps[0].Close {
				t.Errorf("status %d close=%v, want %d and close", resps[0].StatusCode, resps[0].Close, tc.status)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("connection not closed: %v", err)
			}
		})
	}
}

// TestSpinningRunOnTheBackendLoop: an open-loop run that polls on the
// backend's own loop, against that backend, answers every request, and
// its busy share is the loop's work, between nothing and all of the run.
func TestSpinningRunOnTheBackendLoop(t *testing.T) {
	srv, err := listenBackend("127.0.0.1:0", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	res, err := runLoadOn(loadSpec{Targets: []string{srv.addr}, Path: "/static", Rate: 2000, Duration: 500 * time.Millisecond,
		Conns: 4, Grace: time.Second, Spin: true}, srv)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 1000 || res.Errors+res.Non2xx+res.Unsent != 0 {
		t.Fatalf("ok %d errors %d non-2xx %d unsent %d (first error %q)", res.OK, res.Errors, res.Non2xx, res.Unsent, res.FirstError)
	}
	if res.LoopBusy <= 0 || res.LoopBusy >= 1 {
		t.Errorf("loop busy %v, want within (0, 1)", res.LoopBusy)
	}
	if srv.answered != 1000 {
		t.Errorf("backend answered %d, want 1000", srv.answered)
	}
	// The loop leaves the backend's epoll set open for the next run.
	if _, err := unix.EpollWait(srv.epfd, make([]unix.EpollEvent, 1), 0); err != nil {
		t.Errorf("epoll set closed with the run: %v", err)
	}
}

func bigHead(n int) string {
	h := "GET /static HTTP/1.1\r\nX-Big: "
	return h + strings.Repeat("a", n-len(h))
}
