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
	if per > 28 {
		t.Fatalf("%.1f KiB per idle connection, want at most 28", per)
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
	open := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
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

// goMemory is the heap and goroutine stacks a weir started with admin
// pprof on holds after a collection (runtime.MemStats HeapInuse +
// StackInuse): what its objects take, whether or not their pages were
// touched yet (VmRSS misses a buffer fresh from the OS that nobody wrote).
func goMemory(t *testing.T, w *weir) int64 {
	t.Helper()
	resp, err := http.Get("http://" + w.Admin + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var heap, stack int64 = -1, -1
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
	return heap + stack
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
