package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wireConn is one raw client connection to the gateway, for tests where
// what happens to the connection between requests is the point.
type wireConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialWire(t *testing.T, addr string) *wireConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &wireConn{t: t, c: c, br: bufio.NewReader(c)}
}

// exchange writes raw request bytes and reads one whole answer (framed by
// its own Content-Length or chunking), all within wait.
func (w *wireConn) exchange(raw string, wait time.Duration) (*http.Response, string) {
	w.t.Helper()
	_ = w.c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(w.c, raw); err != nil {
		w.t.Fatalf("writing %q: %v", raw, err)
	}
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		w.t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		w.t.Fatalf("reading the body of the answer to %q: %v", raw, err)
	}
	return resp, string(body)
}

// TestGatewayAnswersKeepTheConnection: an answer the gateway makes itself
// (no route, wrong method, a plugin's refusal, a script's reply, an
// aggregate) leaves the client's connection open, so its next request
// goes on the same connection. Only a request whose framing leaves the
// stream unusable (a large body nobody read) closes it.
func TestGatewayAnswersKeepTheConnection(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
consumers:
  - {name: alice, credentials: {key_auth: [{key: "alice-key"}]}}
services:
  - {name: a, targets: [{url: "http://UP"}]}
  - {name: empty}
routes:
  - {name: ok, paths: ["/ok"], methods: [GET], service: a}
  - {name: keyed, paths: ["/keyed"], service: a, plugins: [{name: key_auth}]}
  - name: limited
    paths: ["/limited"]
    service: a
    plugins: [{name: rate_limit, config: {rate: 1, per: 1h, burst: 1, key: ip}}]
  - name: scripted
    paths: ["/scripted"]
    service: a
    plugins:
      - name: lua
        config:
          source: |
            function access()
              return weir.response.exit(403, {error = "blocked by script"})
            end
  - {name: nowhere, paths: ["/empty"], service: empty}
  - name: agg
    paths: ["/agg"]
    aggregate:
      backends:
        - {service: a, path: "/one", key: one}
`, "UP", up))

	next := "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct {
		name      string
		req       string
		status    int
		wantClose bool
	}{
		{"404 GET", "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404, false},
		{"404 POST with a small body", "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", 404, false},
		{"404 POST with a small chunked body", "POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 404, false},
		{"405", "DELETE /ok HTTP/1.1\r\nHost: x\r\n\r\n", 405, false},
		{"401 key_auth with a body", "POST /keyed HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", 401, false},
		{"403 lua exit", "GET /scripted HTTP/1.1\r\nHost: x\r\n\r\n", 403, false},
		{"503 no target", "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n", 503, false},
		{"200 aggregate", "GET /agg HTTP/1.1\r\nHost: x\r\n\r\n", 200, false},
		{"HTTP/1.0 keep-alive 404", "GET /nowhere HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", 404, false},
		// 1 MiB declared, 16 KiB of it sent (fasthttp reads up to 8 KiB
		// before the handler runs): more is left than is worth skipping,
		// so the connection must close (the control of this test).
		{"404 with a large unread body", "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n" + strings.Repeat("z", 16<<10), 404, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWire(t, w.Addr)
			resp, body := c.exchange(tc.req, 5*time.Second)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			// resp.Close: net/http takes Connection: close out of the
			// header and reports it here.
			if resp.Close != tc.wantClose {
				t.Fatalf("Connection: close is %v, want %v", resp.Close, tc.wantClose)
			}
			if tc.wantClose {
				return
			}
			resp, body = c.exchange(next, 5*time.Second)
			if resp.StatusCode != 200 {
				t.Fatalf("second request on the connection: status %d: %s", resp.StatusCode, body)
			}
		})
	}

	// 429: the first request spends the bucket, the second is refused, the
	// third still gets an answer on the same connection.
	t.Run("429 rate_limit", func(t *testing.T) {
		c := dialWire(t, w.Addr)
		req := "GET /limited HTTP/1.1\r\nHost: x\r\n\r\n"
		if resp, body := c.exchange(req, 5*time.Second); resp.StatusCode != 200 {
			t.Fatalf("first request: %d %s", resp.StatusCode, body)
		}
		resp, body := c.exchange(req, 5*time.Second)
		if resp.StatusCode != 429 || resp.Close {
			t.Fatalf("second request: %d Connection: close %v: %s", resp.StatusCode, resp.Close, body)
		}
		if resp, body := c.exchange(next, 5*time.Second); resp.StatusCode != 200 {
			t.Fatalf("request after the 429: %d %s", resp.StatusCode, body)
		}
	})
}
