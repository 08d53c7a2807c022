package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestConnQueueDefaultWait: more busy clients than upstream connections
// (the shape of 10,000 keep-alive clients in front of the default 1,024
// connections per target) queue for a connection with the default
// max_conn_wait instead of getting 503: wait ≈ requests ahead ÷ rate,
// here ~3 s for the last of 40 requests over 2 connections to an
// upstream that takes 150 ms. Before: max_conn_wait defaulted to 1 s and
// the last ~25 requests got 503 "upstream connection limit reached".
func TestConnQueueDefaultWait(t *testing.T) {
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		time.Sleep(150 * time.Millisecond)
		rc.SetBodyString("ok")
	})
	w := startWeir(t, fmt.Sprintf(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: s, max_conns_per_target: 2, targets: [{url: "http://%s"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, up))
	const clients = 40
	codes := make([]int, clients)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = getOnce(t, w.Addr, "/q", 20*time.Second)
		}()
	}
	wg.Wait()
	bad := 0
	for _, c := range codes {
		if c != 200 {
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d queued requests not answered 200 (statuses %v)", bad, clients, codes)
	}
}

// getOnce sends GET path on a new connection and returns the status (0:
// no answer within d).
func getOnce(t *testing.T, addr, path string, d time.Duration) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
