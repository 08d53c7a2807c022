package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsUpstream is a coder/websocket echo server on loopback: every message
// comes back with its type; "close-me" makes the server close with 4002.
// Each connection's end (the close code it saw) goes to closed, and each
// handshake's request to hello.
type wsUpstream struct {
	addr      string
	closed    chan websocket.StatusCode
	hello     chan *http.Request
	handshake atomic.Int64
}

func startWSUpstream(t *testing.T) *wsUpstream {
	t.Helper()
	u := &wsUpstream{closed: make(chan websocket.StatusCode, 16), hello: make(chan *http.Request, 16)}
	u.addr = serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.handshake.Add(1)
		u.hello <- r
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.SetReadLimit(4 << 20)
		ctx := context.Background()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				u.closed <- websocket.CloseStatus(err)
				return
			}
			if string(msg) == "close-me" {
				_ = c.Close(4002, "server bye")
				u.closed <- 4002
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				u.closed <- websocket.CloseStatus(err)
				return
			}
		}
	}))
	return u
}

func (u *wsUpstream) closeCode(t *testing.T) websocket.StatusCode {
	t.Helper()
	select {
	case c := <-u.closed:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream's WebSocket did not end")
		return 0
	}
}

func wsConfig(up, extra string) string {
	return strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: ws, targets: [{url: "http://UP"}]}]
`, "UP", up) + extra
}

func wsDial(t *testing.T, w *weir, path string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+w.Addr+path, &websocket.DialOptions{HTTPHeader: hdr})
	if c != nil {
		c.SetReadLimit(4 << 20)
	}
	return c, resp, err
}

func wsEcho(t *testing.T, c *websocket.Conn, typ websocket.MessageType, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	gt, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gt != typ || !bytes.Equal(got, msg) {
		t.Fatalf("echo: got %v %d bytes, want %v %d bytes", gt, len(got), typ, len(msg))
	}
}

// TestWebSocketEcho: text, binary and a large fragmented message go
// through Weir and back; close codes pass both ways; the upstream gets the
// gateway's forwarding fields; the connection gauge and byte counters move.
func TestWebSocketEcho(t *testing.T) {
	up := startWSUpstream(t)
	w := startWeir(t, wsConfig(up.addr, `routes: [{name: chat, paths: ["/chat"], service: ws}]`))

	c, resp, err := wsDial(t, w, "/chat?room=1", nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	if resp.StatusCode != 101 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("handshake answer: %d %v", resp.StatusCode, resp.Header)
	}
	r := <-up.hello
	if r.URL.RequestURI() != "/chat?room=1" || r.Header.Get("X-Forwarded-For") != "127.0.0.1" ||
		r.Header.Get("X-Forwarded-Proto") != "http" || r.Header.Get("Sec-WebSocket-Key") == "" {
		t.Fatalf("upstream handshake: %s %v", r.URL.RequestURI(), r.Header)
	}
	// The gauge counts the tunnel, which starts once the 101 is sent.
	if !waitUntil(5*time.Second, 5*time.Millisecond, func() bool {
		return w.metric(`weir_websocket_connections{route="chat"}`) == 1
	}) {
		t.Fatalf("weir_websocket_connections = %v, want 1", w.metric(`weir_websocket_connections{route="chat"}`))
	}

	wsEcho(t, c, websocket.MessageText, []byte("hello"))
	wsEcho(t, c, websocket.MessageBinary, []byte{0, 1, 2, 0xff, 0x80})

	// A large message in fragments: three frames of 300 KB.
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*300<<10/16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wr, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := wr.Write(big[i*300<<10 : (i+1)*300<<10]); err != nil {
			t.Fatal(err)
		}
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	typ, got, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || !bytes.Equal(got, big) {
		t.Fatalf("large message: %v %v %d bytes", err, typ, len(got))
	}

	// The client closes with its code: the upstream sees it.
	if err := c.Close(4001, "client bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if code := up.closeCode(t); code != 4001 {
		t.Fatalf("upstream saw close %d, want 4001", code)
	}

	// The upstream closes with its code: the client sees it.
	c, _, err = wsDial(t, w, "/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-up.hello
	if err := c.Write(ctx, websocket.MessageText, []byte("close-me")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != 4002 {
		t.Fatalf("client saw %v, want close 4002", err)
	}
	up.closeCode(t)

	if !waitUntil(5*time.Second, 10*time.Millisecond, func() bool {
		return w.metric(`weir_websocket_connections{route="chat"}`) == 0
	}) {
		t.Fatal("weir_websocket_connections did not fall back to 0")
	}
	in := w.metric(`weir_websocket_bytes_total{route="chat",direction="upstream"}`)
	out := w.metric(`weir_websocket_bytes_total{route="chat",direction="downstream"}`)
	if in < float64(len(big)) || out < float64(len(big)) {
		t.Fatalf("byte counters: upstream %v downstream %v, want at least %d each", in, out, len(big))
	}
}

// TestWebSocketAuth: the route's plugins judge the handshake: key_auth
// answers 401 without a key and lets the WebSocket open with one;
// rate_limit answers 429 past its rate.
func TestWebSocketAuth(t *testing.T) {
	up := startWSUpstream(t)
	w := startWeir(t, wsConfig(up.addr, `
consumers: [{name: alice, credentials: {key_auth: [{key: "alice-key"}]}}]
routes:
  - {name: keyed, paths: ["/keyed"], service: ws, plugins: [{name: key_auth}]}
  - {name: limited, paths: ["/limited"], service: ws, plugins: [{name: rate_limit, config: {rate: 1, per: 1m, burst: 1}}]}
`))
	_, resp, err := wsDial(t, w, "/keyed", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("no key: %v %v", err, resp)
	}
	c, _, err := wsDial(t, w, "/keyed", http.Header{"X-API-Key": {"alice-key"}})
	if err != nil {
		t.Fatalf("with key: %v", err)
	}
	if r := <-up.hello; r.Header.Get("X-Consumer-Name") != "alice" {
		t.Fatalf("upstream handshake lacks the consumer: %v", r.Header)
	}
	wsEcho(t, c, websocket.MessageText, []byte("authorized"))
	c.Close(websocket.StatusNormalClosure, "")

	c, _, err = wsDial(t, w, "/limited", nil)
	if err != nil {
		t.Fatalf("first limited: %v", err)
	}
	defer c.CloseNow()
	<-up.hello
	_, resp, err = wsDial(t, w, "/limited", nil)
	if err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("over the rate: %v %v", err, resp)
	}
	if n := up.handshake.Load(); n != 2 {
		t.Fatalf("the upstream got %d handshakes, want 2 (refused ones never reach it)", n)
	}
}

// TestWebSocketIdleTimeout: a WebSocket nothing passes through is closed
// after the route's websocket.idle_timeout, with 1001 to both sides;
// traffic keeps it open.
func TestWebSocketIdleTimeout(t *testing.T) {
	up := startWSUpstream(t)
	w := startWeir(t, wsConfig(up.addr, `
routes: [{name: idle, paths: ["/idle"], service: ws, websocket: {idle_timeout: 400ms}}]
`))
	c, _, err := wsDial(t, w, "/idle", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-up.hello
	for i := 0; i < 4; i++ { // 800 ms of traffic, 200 ms apart
		wsEcho(t, c, websocket.MessageText, []byte("tick"))
		time.Sleep(200 * time.Millisecond)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Fatalf("client saw %v, want close 1001", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle close took %v", d)
	}
	if code := up.closeCode(t); code != websocket.StatusGoingAway {
		t.Fatalf("upstream saw close %d, want 1001", code)
	}
}

// TestWebSocketMaxWebSockets: past server.max_websockets a handshake is
// answered 503; a closed WebSocket frees its place.
func TestWebSocketMaxWebSockets(t *testing.T) {
	up := startWSUpstream(t)
	w := startWeir(t, wsConfig(up.addr, `
server: {max_websockets: 1}
routes: [{name: capped, paths: ["/"], service: ws}]
`))
	c, _, err := wsDial(t, w, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-up.hello
	_, resp, err := wsDial(t, w, "/", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("second WebSocket: %v %v", err, resp)
	}
	c.Close(websocket.StatusNormalClosure, "")
	up.closeCode(t)
	if !waitUntil(5*time.Second, 20*time.Millisecond, func() bool {
		c, _, err := wsDial(t, w, "/", nil)
		if err != nil {
			return false
		}
		c.Close(websocket.StatusNormalClosure, "")
		return true
	}) {
		t.Fatal("the place of a closed WebSocket was not freed")
	}
}

// TestWebSocketDrain: SIGTERM tells every WebSocket to go away: a close
// frame with 1001 to the client and to the upstream, then weir exits.
func TestWebSocketDrain(t *testing.T) {
	up := startWSUpstream(t)
	// max_conns_per_ip: fasthttp wraps the connection once more, which
	// the tunnel must see through to wake its pumps.
	w := startWeir(t, wsConfig(up.addr, `
server: {max_conns_per_ip: 100}
routes: [{name: d, paths: ["/"], service: ws}]
`))
	c, _, err := wsDial(t, w, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-up.hello
	wsEcho(t, c, websocket.MessageText, []byte("before"))
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Fatalf("client saw %v, want close 1001", err)
	}
	if code := up.closeCode(t); code != websocket.StatusGoingAway {
		t.Fatalf("upstream saw close %d, want 1001", code)
	}
	if !w.waitExit(10*time.Second) || w.exit != nil {
		t.Fatalf("weir did not exit cleanly: %v\n%s", w.exit, w.Logs())
	}
}

// TestWebSocketBadHandshake: a handshake RFC 6455 says a server must
// refuse gets 400 from the gateway and never reaches the upstream (so it
// never counts against the target's health).
func TestWebSocketBadHandshake(t *testing.T) {
	up := startWSUpstream(t)
	w := startWeir(t, wsConfig(up.addr, `routes: [{name: ws, paths: ["/"], service: ws}]`))
	base := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	for _, tc := range []struct{ name, req, want string }{
		{"no key", base + "Sec-WebSocket-Version: 13\r\n\r\n", "Sec-WebSocket-Key"},
		{"short key", base + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\r\n", "Sec-WebSocket-Key"},
		{"version 8", base + "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", "Sec-WebSocket-Version"},
		{"POST", strings.Replace(base, "GET", "POST", 1) + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n", "GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", w.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			resp, body, err := connExchange(conn, bufio.NewReader(conn), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 400 || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			if tc.name == "version 8" && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Fatalf("no Sec-WebSocket-Version: 13 in %v", resp.Header)
			}
		})
	}
	if n := up.handshake.Load(); n != 0 {
		t.Fatalf("the upstream got %d handshakes, want none", n)
	}
	// A good handshake still opens.
	c, _, err := wsDial(t, w, "/", nil)
	if err != nil {
		t.Fatalf("a good handshake after the bad ones: %v", err)
	}
	c.CloseNow()
}

// TestWebSocketTargetFailure: a handshake the target fails counts against
// it like any proxied request (passive health ejects it) and is retried
// on another target, so the client never sees the dead one.
func TestWebSocketTargetFailure(t *testing.T) {
	up := startWSUpstream(t)
	dead := freeAddr(t) // nothing listens there
	w := startWeir(t, strings.NewReplacer("UP", up.addr, "DEAD", dead).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: ws
    targets: [{url: "http://DEAD"}, {url: "http://UP"}]
    health_check: {passive: {unhealthy_after: 1, healthy_after_ms: 60000}}
routes: [{name: ws, paths: ["/"], service: ws}]
`))
	for i := 0; i < 4; i++ {
		c, _, err := wsDial(t, w, "/", nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		<-up.hello
		wsEcho(t, c, websocket.MessageText, []byte("alive"))
		c.Close(websocket.StatusNormalClosure, "")
	}
	if h := w.metric(`weir_upstream_target_healthy{service="ws",target="http://` + dead + `"}`); h != 0 {
		t.Fatalf("the dead target is healthy (%v): its failed handshake was not counted", h)
	}
}

// TestWebSocketOverTLS: a WebSocket through a TLS listener (wss://),
// echoed, then closed by the idle timeout with 1001 to both sides; and
// through a listener with max_conns_per_ip, whose connections fasthttp
// wraps once more.
func TestWebSocketOverTLS(t *testing.T) {
	ca := newTestCA(t, "weir test CA")
	cert, key, _ := ca.issue(t, leafOpts{names: []string{"gw.test"}})
	cf, kf := writePair(t, t.TempDir(), "gw", cert, key)
	up := startWSUpstream(t)
	w := startWeir(t, strings.NewReplacer("UP", up.addr, "CERT", cf, "KEY", kf).Replace(`
listen:
  - address: "{{LISTEN}}"
    tls: {certificates: [{cert: "CERT", key: "KEY"}]}
admin: {listen: "{{ADMIN}}"}
server: {max_conns_per_ip: 100}
services: [{name: ws, targets: [{url: "http://UP"}]}]
routes: [{name: ws, paths: ["/"], service: ws, websocket: {idle_timeout: 300ms}}]
`))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "gw.test"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+w.Addr+"/", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if r := <-up.hello; r.Header.Get("X-Forwarded-Proto") != "https" {
		t.Fatalf("upstream handshake: %v", r.Header)
	}
	wsEcho(t, c, websocket.MessageText, []byte("over tls"))
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Fatalf("client saw %v, want close 1001", err)
	}
	if code := up.closeCode(t); code != websocket.StatusGoingAway {
		t.Fatalf("upstream saw close %d, want 1001", code)
	}
}
