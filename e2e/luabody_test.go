package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLuaBodyFilterChunkedAndUntilClose: body_filter sees the whole body
// of an upstream answer the proxy would stream, chunked or ended by the
// upstream closing, when it ends within 256 KiB: the client gets the
// filtered body with a Content-Length. A longer one streams to the client
// unfiltered and intact (counted as skipped); an upstream that breaks its
// chunked body off is a clean 502. Raw bytes on both sides.
func TestLuaBodyFilterChunkedAndUntilClose(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	var conns atomic.Int32
	up := serveRaw(t, func(c net.Conn) {
		conns.Add(1)
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			head, err := readHead(br)
			if err != nil {
				return
			}
			path := strings.Fields(head)[1]
			switch path {
			case "/body/chunked":
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
					"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
			case "/body/close":
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello"))
				time.Sleep(20 * time.Millisecond)
				_, _ = c.Write([]byte(" world"))
				return
			case "/body/chunked-big":
				var b strings.Builder
				b.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
				for i := 0; i < len(big); i += 4096 {
					fmt.Fprintf(&b, "%x\r\n%s\r\n", 4096, big[i:i+4096])
				}
				b.WriteString("0\r\n\r\n")
				_, _ = c.Write([]byte(b.String()))
			case "/body/close-big":
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big))
				return
			case "/body/chunked-cut":
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"))
				return
			default:
				_, _ = c.Write([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
			}
		}
	})
	w := startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://`+up+`"}], retries: 0}]
routes:
  - name: body
    paths: ["/body/"]
    service: a
    plugins:
      - name: lua
        config:
          source: |
            function body_filter(body)
              return body:upper() .. "|" .. #body
            end
`)
	exchange := func(path string) (int, string, string, string) {
		t.Helper()
		c, err := net.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		resp, body, err := connExchange(c, bufio.NewReader(c), "GET "+path+" HTTP/1.1\r\nHost: gw\r\n\r\n")
		if resp == nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err != nil {
			t.Errorf("%s: %v", path, err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Length"), strings.Join(resp.TransferEncoding, ","), body
	}
	skipped := `weir_lua_body_filter_skipped_total{route="body"}`

	for _, path := range []string{"/body/chunked", "/body/close", "/body/chunked"} {
		code, cl, te, body := exchange(path)
		if code != 200 || body != "HELLO WORLD|11" || cl != "14" || te != "" {
			t.Errorf("%s: %d Content-Length %q Transfer-Encoding %q body %q; want 200, the filtered body %q with Content-Length 14",
				path, code, cl, te, body, "HELLO WORLD|11")
		}
	}
	// The chunked answers' upstream connection went back to the pool
	// once their body was read: both came on one connection, the
	// until-close answer on its own.
	if n := conns.Load(); n != 2 {
		t.Errorf("upstream connections: %d, want 2 (one reused for both chunked answers, one closed by the until-close answer)", n)
	}
	if v := w.metric(skipped); v != 0 {
		t.Errorf("%s = %v after bodies within 256 KiB, want 0", skipped, v)
	}

	for i, path := range []string{"/body/chunked-big", "/body/close-big"} {
		code, cl, te, body := exchange(path)
		if code != 200 || body != big || te != "chunked" || cl != "" {
			t.Errorf("%s: %d Content-Length %q Transfer-Encoding %q, %d bytes (intact: %v); want the upstream's 300 KiB unfiltered, chunked",
				path, code, cl, te, len(body), body == big)
		}
		if v := w.metric(skipped); v != float64(i+1) {
			t.Errorf("%s = %v after %d answers over 256 KiB, want %d", skipped, v, i+1, i+1)
		}
	}

	if code, _, _, body := exchange("/body/chunked-cut"); code != 502 || strings.Contains(body, "HELLO") {
		t.Errorf("/body/chunked-cut: %d %q; want a clean 502 for a body the upstream broke off", code, body)
	}
}
