package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

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
