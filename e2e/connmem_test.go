package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestIdleConnectionMemory: a keep-alive client connection that has had
// one 10 KB answer (the users' average) and now waits for its next
// request costs the gateway little memory: its write buffer and the
// answer's body buffer go back to pools between requests, and the buffer
// the answer was sent from goes back before the wait. Measured as the
// VmRSS growth over 1,000 such connections (nginx keeps about 1–4 KiB
// each; the bound leaves room for the goroutine, its read buffer and
// request state). Before: ~46 KiB per connection.
func TestIdleConnectionMemory(t *testing.T) {
	body := strings.Repeat("x", 10<<10)
	up := serveFast(t, func(rc *fasthttp.RequestCtx) { rc.SetBodyString(body) })
	w := startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: s, targets: [{url: "http://%s"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, up))
	pid := w.cmd.Process.Pid
	// Warm up: pools, the upstream connections, the runtime's heap.
	oneAnswer := func() net.Conn {
		c, err := net.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "GET /ten HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || n != int64(len(body)) {
			t.Fatalf("answer %d with %d bytes", resp.StatusCode, n)
		}
		return c
	}
	for i := 0; i < 200; i++ {
		oneAnswer().Close()
	}
	const conns = 1000
	before := vmRSS(t, pid)
	open := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		open = append(open, oneAnswer())
	}
	after := vmRSS(t, pid)
	per := float64(after-before) / conns / 1024
	t.Logf("%d idle keep-alive connections after a 10 KB answer each: VmRSS %d -> %d KiB, %.1f KiB per connection", conns, before>>10, after>>10, per)
	if per > 14 {
		t.Fatalf("%.1f KiB per idle connection, want at most 14", per)
	}
}

// TestUnusedConnectionMemory: a client connection that is open but has
// not sent its request yet (a browser's pre-connect; a load generator
// ramping up to 10,000 connections) costs the gateway its goroutine and
// connection state, and no read buffer: the read-ahead buffer is borrowed
// once the request's bytes are there, not for the wait. Measured as the
// VmRSS growth over 2,000 such connections. Before: ~24 KiB each (a
// 16 KiB read-ahead buffer held through the wait).
func TestUnusedConnectionMemory(t *testing.T) {
	raiseNoFile(t, 4096)
	up := serveFast(t, func(rc *fasthttp.RequestCtx) { rc.SetBodyString("ok") })
	w := startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", pprof: true}
services: [{name: s, targets: [{url: "http://%s"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, up))
	pid := w.cmd.Process.Pid
	// Warm up the runtime's heap and the pools with connections that
	// come and go, each with one request.
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("warm-up answer: %v %v", resp, err)
		}
		c.Close()
	}
	const conns = 2000
	fds0 := settledFDs(t, pid) // the warm-up connections closed
	before := goMemory(t, w)
	open := openConns(t, w.Addr, conns, "")
	// Every connection accepted and its goroutine waiting for the first
	// byte (bounded: 10 s).
	for i := 0; openFDs(t, pid) < fds0+conns; i++ {
		if i == 200 {
			t.Fatalf("%d of %d connections accepted after 10 s", openFDs(t, pid)-fds0, conns)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	after := goMemory(t, w)
	per := float64(after-before) / conns / 1024
	t.Logf("%d connections open, no request yet: heap and stacks in use %d -> %d KiB, %.1f KiB per connection", conns, before>>10, after>>10, per)
	if per > 8 {
		t.Fatalf("%.1f KiB per unused connection, want at most 8", per)
	}
	// They still work: a request on the last one is answered.
	c := open[len(open)-1]
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("answer on a connection that waited: %v %v", resp, err)
	}
}

// openConns opens n connections to addr, each sending first (when not
// empty); they are closed when the test ends.
func openConns(t *testing.T, addr string, n int, first string) []net.Conn {
	t.Helper()
	open := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		if first != "" {
			if _, err := io.WriteString(c, first); err != nil {
				t.Fatal(err)
			}
		}
	}
	return open
}

// goMemory is the heap and goroutine stacks a weir started with admin
// pprof on holds after a collection (runtime.MemStats HeapInuse +
// StackInuse): what its objects take, whether or not their pages were
// touched yet (VmRSS misses a buffer fresh from the OS that nobody wrote).
func goMemory(t *testing.T, w *weir) int64 {
	t.Helper()
	heap, stack := goHeapStack(t, w)
	return heap + stack
}

// goHeapStack is goMemory's two parts: HeapInuse and StackInuse.
func goHeapStack(t *testing.T, w *weir) (heap, stack int64) {
	t.Helper()
	resp, err := http.Get("http://" + w.Admin + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	heap, stack = -1, -1
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && f[1] == "HeapInuse":
			heap, _ = strconv.ParseInt(f[3], 10, 64)
		case len(f) >= 4 && f[1] == "Stack":
			stack, _ = strconv.ParseInt(f[3], 10, 64)
		}
	}
	if heap < 0 || stack < 0 {
		t.Fatalf("no HeapInuse or Stack in the heap profile (%v)", sc.Err())
	}
	return heap, stack
}

// openFDs is the number of descriptors pid has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// settledFDs waits (at most 5 s) until pid's descriptor count stops
// changing, and returns it.
func settledFDs(t *testing.T, pid int) int {
	t.Helper()
	n := openFDs(t, pid)
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		m := openFDs(t, pid)
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// raiseNoFile lifts this process's open-file limit (which the weir it
// starts inherits) to at least n, or skips the test.
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("open-file limit %d, the test needs %d", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

// TestQueuedRequestMemory: the shape of 10,000 busy keep-alive clients in
// front of a gateway that is the bottleneck: most requests wait inside it
// for an upstream connection (max_conns_per_target), each holding what its
// connection and request need. A GET needs its read buffer no more once
// its header is read, so a waiting request holds none (the patched
// fasthttp, third_party/fasthttp/PATCH.md). Measured as heap and stacks
// in use per waiting request over 2,000 of them: ~11 KiB, of which
// 4 KiB is the goroutine's stack (TestBusyConnectionStack) and the rest
// the request's state (fasthttp's RequestCtx 1.75 KiB, sdk.Ctx 1.5 KiB,
// Weir's reqState 0.5 KiB, the request's header fields). Before: ~24 KiB
// (the 8 KiB read buffer held through the wait), then ~16 KiB (an 8 KiB
// stack), then ~12.7 KiB (the router's 1.5 KiB match state held in the
// reqState through the wait, and a Ctx in the 1,792-byte size class).
func TestQueuedRequestMemory(t *testing.T) {
	const conns = 2000
	w, measure := busyGateway(t, 16, conns, 16, "")
	before := goMemory(t, w)
	open := measure()
	after := goMemory(t, w)
	per := float64(after-before) / conns / 1024
	t.Logf("%d requests waiting for an upstream connection: heap and stacks in use %d -> %d KiB, %.1f KiB per request", conns, before>>10, after>>10, per)
	// All of them are answered.
	readAllOK(t, open(), 30*time.Second)
	if per > 12 {
		t.Fatalf("%.1f KiB per waiting request, want at most 12", per)
	}
}

// busyGateway starts a weir (admin pprof on) in front of a holding
// upstream, with max_conns_per_target maxConns. Its measure opens conns
// connections, each sending a GET, and returns once every connection is
// accepted, atUpstream requests are at the upstream and the rest have
// had time to queue (bounded: 10 s); release then lets the upstream
// answer them all and returns the connections.
func busyGateway(t *testing.T, maxConns, conns int, atUpstream int64, server string) (w *weir, measure func() (release func() []net.Conn)) {
	t.Helper()
	raiseNoFile(t, 4096)
	up, got, hold := holdingUpstream(t)
	w = startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", pprof: true}
server: {%s}
services: [{name: s, max_conns_per_target: %d, max_conn_wait: 60s, timeout: 60s, targets: [{url: "http://%s"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, server, maxConns, up))
	var once sync.Once
	let := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(let)
	pid := w.cmd.Process.Pid
	fds0 := settledFDs(t, pid)
	return w, func() func() []net.Conn {
		open := openConns(t, w.Addr, conns, "GET /q HTTP/1.1\r\nHost: x\r\n\r\n")
		for i := 0; openFDs(t, pid) < fds0+conns+int(atUpstream) || got.Load() < atUpstream; i++ {
			if i == 200 {
				t.Fatalf("after 10 s: %d descriptors more, %d requests at the upstream", openFDs(t, pid)-fds0, got.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // the last requests read and queued
		return func() []net.Conn {
			let()
			return open
		}
	}
}

// TestPooledUpstreamMemory: an idle pooled upstream connection (1,000 of
// them, left by 1,000 concurrent requests) holds no read or write buffer:
// they go back to a pool with the connection, and a request that takes it
// gets them again. Measured as the heap in use per pooled connection once
// the client connections are closed (stacks left out: fasthttp keeps idle
// workers for a while). Before: ~11 KiB each.
func TestPooledUpstreamMemory(t *testing.T) {
	raiseNoFile(t, 4096)
	up, got, release := holdingUpstream(t)
	w := startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", pprof: true}
services: [{name: s, targets: [{url: "http://%s"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, up))
	const conns = 1000
	heap0, _ := goHeapStack(t, w)
	open := openConns(t, w.Addr, conns, "GET /q HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := 0; got.Load() < conns; i++ {
		if i == 200 {
			close(release)
			t.Fatalf("after 10 s %d of %d requests at the upstream", got.Load(), conns)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(release)
	readAllOK(t, open, 10*time.Second)
	for _, c := range open {
		c.Close()
	}
	goHeapStack(t, w) // a first collection; the second empties sync.Pools
	heap1, _ := goHeapStack(t, w)
	per := float64(heap1-heap0) / conns / 1024
	t.Logf("%d pooled upstream connections: heap in use %d -> %d KiB, %.1f KiB each", conns, heap0>>10, heap1>>10, per)
	if per > 5 {
		t.Fatalf("%.1f KiB of heap per pooled upstream connection, want at most 5", per)
	}
	// The pooled connections serve again.
	for i := 0; i < 20; i++ {
		c := openConns(t, w.Addr, 1, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n")[0]
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("a request on a pooled connection: %v %v", resp, err)
		}
	}
}

// holdingUpstream is an upstream that counts the requests it gets and
// holds each one until release is closed.
func holdingUpstream(t *testing.T) (addr string, got *atomic.Int64, release chan struct{}) {
	release = make(chan struct{})
	got = new(atomic.Int64)
	addr = serveFast(t, func(rc *fasthttp.RequestCtx) {
		got.Add(1)
		<-release
		rc.SetBodyString("ok")
	})
	return addr, got, release
}

// readAllOK reads a 200 answer on each connection within d.
func readAllOK(t *testing.T, conns []net.Conn, d time.Duration) {
	t.Helper()
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(d))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
}

// TestBusyConnectionStack: a busy client connection's goroutine keeps a
// 4 KiB stack, not 8. Go doubles a goroutine's stack when its deepest
// call does not fit, and a busy connection's stack is not shrunk while
// more than a quarter of it is in use, so one deep moment anywhere in a
// request (routing, the upstream dial, writing the upstream request,
// parsing its answer) costs 4 KiB more for as long as the connection is
// busy. 1,500 connections each send a GET: 1,000 of them wait at the
// upstream for its answer (one upstream connection each, dialed for
// them), 500 for a connection to the upstream (max_conns_per_target).
// Measured as the goroutine stacks in use per connection (StackInuse).
// Before: ~8 KiB each.
//
// With server.gc_heap_floor off: Go shrinks a stack only during a
// collection, and with the floor's 64 MiB goal this small a gateway does
// not collect during the test, so a stack grown by a deep moment stays
// 8 KiB until the next one (4.2 KiB per connection with the floor off,
// 5.8 with it; README, "Memory and GC"). What is tested here is the
// request path's depth.
func TestBusyConnectionStack(t *testing.T) {
	const conns, atUpstream = 1500, 1000
	w, measure := busyGateway(t, atUpstream, conns, atUpstream, "gc_heap_floor: 0")
	_, before := goHeapStack(t, w)
	open := measure()
	_, after := goHeapStack(t, w)
	per := float64(after-before) / conns / 1024
	t.Logf("%d busy connections (%d at the upstream, the rest waiting for a connection to it): stacks in use %d -> %d KiB, %.1f KiB per connection", conns, atUpstream, before>>10, after>>10, per)
	readAllOK(t, open(), 30*time.Second)
	if per > 5 {
		t.Fatalf("%.1f KiB of goroutine stack per busy connection, want at most 5 (a 4 KiB stack each)", per)
	}
}
