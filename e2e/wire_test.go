package e2e

import (
	"bufio"
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
	resp, body, err := connExchange(w.c, w.br, raw)
	if err != nil {
		w.t.Fatalf("%q: %v", raw, err)
	}
	return resp, body
}

// TestGatewayAnswersKeepTheConnection: an answer the gateway makes itself
// (no route, wrong method, a plugin's refusal, a script's or a wasm
// guest's reply, an upstream timeout, an aggregate) leaves the client's connection open, so its next request
// goes on the same connection. Only a request whose framing leaves the
// stream unusable (a large body nobody read) closes it.
func TestGatewayAnswersKeepTheConnection(t *testing.T) {
	up := startEcho(t, "e1")
	// http_body answers a request without a body itself (400): a guest's
	// local reply.
	module := buildSDKFilter(t, "http_body")
	w := startWeir(t, strings.NewReplacer("UP", up, "MODULE", module).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
consumers:
  - {name: alice, credentials: {key_auth: [{key: "alice-key"}]}}
services:
  - {name: a, targets: [{url: "http://UP"}]}
  - {name: empty}
  - {name: slow, timeout: 300ms, retries: 0, targets: [{url: "http://UP"}]}
routes:
  - {name: slow, paths: ["/sleep/"], service: slow}
  - name: guest
    paths: ["/guest"]
    service: a
    plugins: [{name: wasm, config: {module: "MODULE", timeout: 2s}}]
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
  - name: cached
    paths: ["/cached"]
    service: a
    plugins: [{name: cache, config: {store: memory, default_ttl: 60s}}]
  - name: agg
    paths: ["/agg"]
    aggregate:
      backends:
        - {service: a, path: "/one", key: one}
`))

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
		{"504 upstream timed out", "GET /sleep/2000 HTTP/1.1\r\nHost: x\r\n\r\n", 504, false},
		{"400 wasm local reply", "GET /guest HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
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

	// A cache hit is a plugin's answer too.
	t.Run("cache hit", func(t *testing.T) {
		c := dialWire(t, w.Addr)
		req := "GET /cached HTTP/1.1\r\nHost: x\r\n\r\n"
		if resp, body := c.exchange(req, 5*time.Second); resp.StatusCode != 200 {
			t.Fatalf("first request: %d %s", resp.StatusCode, body)
		}
		resp, body := c.exchange(req, 5*time.Second)
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "HIT" || resp.Close {
			t.Fatalf("second request: %d %s, Connection: close %v: %s", resp.StatusCode,
				resp.Header.Get("X-Cache-Status"), resp.Close, body)
		}
		if resp, body := c.exchange(next, 5*time.Second); resp.StatusCode != 200 {
			t.Fatalf("request after the hit: %d %s", resp.StatusCode, body)
		}
	})

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

// TestWireStrictness: one interpretation of a request's bytes. What
// another HTTP stack could read differently is refused at once, before
// any plugin runs; fields whose names hold "_" are dropped. nginx 1.22.1
// (proxy_pass to the same upstream) was run on the same bytes; its answer
// is noted per row.
func TestWireStrictness(t *testing.T) {
	up, seen := recordingUpstream(t)
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {read_timeout: 30s}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/"], service: a}]
`, "UP", up))

	cases := []struct {
		name   string
		req    string
		status int
		close  bool
	}{
		// nginx (checked with the first row): 400, Connection: close.
		{"content-length and transfer-encoding", "POST /cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"content-length and transfer-encoding on a GET", "GET /cl-te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n", 400, true},
		{"content-length and transfer-encoding identity", "POST /cl-te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", 400, true},
		// nginx: 400, Connection: close.
		{"space in a name (Transfer Encoding)", "POST /sp HTTP/1.1\r\nHost: x\r\nTransfer Encoding: chunked\r\n\r\n", 400, true},
		{"space in a name (X A)", "GET /sp HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", 400, true},
		// nginx: 505 for HTTP/2.0 and HTTP/3, 400 for HTTP/0.9.
		{"HTTP/2.0", "GET /v HTTP/2.0\r\nHost: x\r\n\r\n", 505, true},
		{"HTTP/3", "GET /v HTTP/3\r\nHost: x\r\n\r\n", 505, true},
		{"HTTP/0.9", "GET /v HTTP/0.9\r\nHost: x\r\n\r\n", 505, true},
		// nginx 1.22.1: 400 (it does not parse CONNECT); 405 says why.
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, true},
		// nginx: 400. The framing is sound, so the connection stays.
		{"two Authorization fields", "GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n", 400, false},
		// nginx: 200 for all four (it takes a bare LF for a line end).
		// fasthttp waits for a CRLF CRLF that never comes (until the read
		// timeout, 30 s here); the gateway refuses at once instead.
		{"bare LF", "GET /lf HTTP/1.1\nHost: x\n\n", 400, true},
		{"bare LF after CRLF lines", "GET /lf HTTP/1.1\r\nHost: x\n\n", 400, true},
		{"bare LF then CRLF", "GET /lf HTTP/1.1\r\nHost: x\n\r\n", 400, true},
		{"bare LF with a body", "POST /lf HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc", 400, true},
		// nginx: 200 (a later HTTP/1 minor version is served as 1.1).
		{"HTTP/1.2", "GET /v12 HTTP/1.2\r\nHost: x\r\n\r\n", 200, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWire(t, w.Addr)
			start := time.Now()
			resp, body := c.exchange(tc.req, 2*time.Second)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("answered after %v", d)
			}
			if resp.Close != tc.close {
				t.Fatalf("Connection: close is %v, want %v", resp.Close, tc.close)
			}
		})
	}

	// drain empties what the upstream has recorded so far.
	drain := func() {
		for {
			select {
			case <-seen:
			default:
				return
			}
		}
	}
	// next waits for the upstream's next request head.
	next := func(t *testing.T) string {
		t.Helper()
		select {
		case h := <-seen:
			return h
		case <-time.After(2 * time.Second):
			t.Fatal("the upstream got no request")
			return ""
		}
	}

	t.Run("the upstream always gets HTTP/1.1", func(t *testing.T) {
		for _, tc := range []struct{ name, req string }{
			{"HTTP/1.0", "GET /v10 HTTP/1.0\r\nHost: x\r\n\r\n"},
			{"HTTP/1.0 keep-alive", "GET /v10 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"},
			{"HTTP/1.2", "GET /v12 HTTP/1.2\r\nHost: x\r\n\r\n"},
			{"HTTP/1.1", "GET /v11 HTTP/1.1\r\nHost: x\r\n\r\n"},
		} {
			drain()
			c := dialWire(t, w.Addr)
			if resp, body := c.exchange(tc.req, 2*time.Second); resp.StatusCode != 200 {
				t.Fatalf("%s: status %d: %s", tc.name, resp.StatusCode, body)
			}
			head := next(t)
			line, _, _ := strings.Cut(head, "\r\n")
			if !strings.HasSuffix(line, " HTTP/1.1") {
				t.Errorf("%s: the upstream's request line is %q, want HTTP/1.1", tc.name, line)
			}
		}
	})

	t.Run("no refused request reaches the upstream", func(t *testing.T) {
		drain()
		c := dialWire(t, w.Addr)
		if resp, _ := c.exchange("GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", 2*time.Second); resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// The same connection goes on: the next request is the one the
		// upstream sees.
		if resp, _ := c.exchange("GET /after HTTP/1.1\r\nHost: x\r\n\r\n", 2*time.Second); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if head := next(t); !strings.HasPrefix(head, "GET /after ") {
			t.Fatalf("the upstream got %q", head)
		}
	})

	underscores := func(t *testing.T, wantKept bool) {
		t.Helper()
		drain()
		c := dialWire(t, w.Addr)
		resp, body := c.exchange("GET /u HTTP/1.1\r\nHost: x\r\nTransfer_encoding: chunked\r\nContent_length: 5\r\nX_Custom: 1\r\nX_Consumer_Name: mallory\r\nX-Plain: 1\r\n\r\n", 2*time.Second)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		head := strings.ToLower(next(t))
		for _, name := range []string{"transfer_encoding:", "content_length:", "x_custom:"} {
			if strings.Contains(head, name) != wantKept {
				t.Errorf("%s forwarded: %v, want %v\n%s", name, !wantKept, wantKept, head)
			}
		}
		// The twin of a protected field never travels.
		if strings.Contains(head, "x_consumer_name") || strings.Contains(head, "mallory") {
			t.Errorf("X_Consumer_Name forwarded:\n%s", head)
		}
		if !strings.Contains(head, "x-plain: 1") {
			t.Errorf("X-Plain lost:\n%s", head)
		}
	}
	t.Run("underscore names dropped by default", func(t *testing.T) { underscores(t, false) })
	t.Run("underscore names kept with server.underscores_in_headers", func(t *testing.T) {
		v := w.configVersion()
		w.write(strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {read_timeout: 30s, underscores_in_headers: true}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/"], service: a}]
`, "UP", up))
		w.waitVersion(v + 1)
		underscores(t, true)
	})
}
