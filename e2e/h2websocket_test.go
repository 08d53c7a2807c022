//lint:file-ignore SA1019 x/net/http2 is deprecated in favour of net/http, which cannot serve one connection handed over by fasthttp (ServeConn) nor take Upgrade: h2c (RATIONALE.md)

package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"
)

// RFC 8441 WebSocket over HTTP/2: x/net's client opens a stream with
// :method CONNECT and :protocol websocket over h2c (it refuses to unless
// the server advertised SETTINGS_ENABLE_CONNECT_PROTOCOL), and speaks
// RFC 6455 frames on it, written here byte by byte; the upstream is
// coder/websocket over HTTP/1.1.

// h2WebSocket is one extended CONNECT stream.
type h2WebSocket struct {
	resp *http.Response
	out  *io.PipeWriter
}

func dialH2WebSocket(t *testing.T, addr, path string, hdr map[string]string) *h2WebSocket {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("CONNECT", "http://"+addr+path, pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	resp, err := h2cClient().Transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("extended CONNECT %s: %v", path, err)
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	return &h2WebSocket{resp: resp, out: pw}
}

// send writes one masked frame (a client's, RFC 6455 §5.3).
func (c *h2WebSocket) send(t *testing.T, op byte, payload []byte) {
	t.Helper()
	f := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i&3])
	}
	if _, err := c.out.Write(f); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// recv reads one frame, which a server sends unmasked.
func (c *h2WebSocket) recv(t *testing.T) (op byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.resp.Body, h[:]); err != nil {
		t.Fatalf("read: %v", err)
	}
	if h[1]&0x80 != 0 {
		t.Fatal("a masked frame from the server side")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(c.resp.Body, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(c.resp.Body, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.resp.Body, payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, payload
}

// TestWebSocketOverHTTP2: an RFC 8441 WebSocket through Weir: the route's
// plugins judge the CONNECT (key_auth's 401 never reaches the upstream),
// messages echo both ways, small and large, the client's close reaches
// the upstream, and websocket.idle_timeout closes a silent one with 1001
// to both sides, as over HTTP/1.1.
func TestWebSocketOverHTTP2(t *testing.T) {
	up := startWSUpstream(t)
	w := startWeir(t, strings.ReplaceAll(`
listen: [{address: "{{LISTEN}}", http2: true}]
admin: {listen: "{{ADMIN}}"}
services: [{name: ws, targets: [{url: "http://UP"}]}]
consumers: [{name: alice, credentials: {key_auth: [{key: "alice-key"}]}}]
routes:
  - {name: keyed, paths: ["/keyed"], service: ws, plugins: [{name: key_auth}]}
  - {name: idle, paths: ["/idle"], service: ws, websocket: {idle_timeout: 400ms}}
`, "UP", up.addr))

	c := dialH2WebSocket(t, w.Addr, "/keyed", nil)
	if c.resp.StatusCode != 401 {
		t.Fatalf("no key: %d, want 401", c.resp.StatusCode)
	}
	if n := up.handshake.Load(); n != 0 {
		t.Fatalf("a refused CONNECT reached the upstream (%d handshakes)", n)
	}

	c = dialH2WebSocket(t, w.Addr, "/keyed", map[string]string{"X-API-Key": "alice-key"})
	if c.resp.StatusCode != 200 || c.resp.ProtoMajor != 2 {
		t.Fatalf("with a key: HTTP/%d %d, want HTTP/2 200", c.resp.ProtoMajor, c.resp.StatusCode)
	}
	if r := <-up.hello; r.Header.Get("X-Consumer-Name") != "alice" || r.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("the upstream's handshake: %v", r.Header)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 kB: past HTTP/2's windows
	for _, msg := range [][]byte{[]byte("hello over h2"), big, []byte("after")} {
		c.send(t, 0x2, msg)
		if op, got := c.recv(t); op != 0x2 || !bytes.Equal(got, msg) {
			t.Fatalf("echo: op %d, %d bytes, want %d", op, len(got), len(msg))
		}
	}
	if v := w.metric(`weir_websocket_connections{route="keyed"}`); v != 1 {
		t.Errorf("weir_websocket_connections = %v, want 1", v)
	}
	c.send(t, 0x8, []byte{0x03, 0xe8}) // close 1000
	if code := up.closeCode(t); code != websocket.StatusNormalClosure {
		t.Fatalf("upstream saw close %d, want 1000", code)
	}
	if op, got := c.recv(t); op != 0x8 || binary.BigEndian.Uint16(got) != 1000 {
		t.Fatalf("the upstream's close frame: op %d %q", op, got)
	}
	if !waitUntil(10*time.Second, 20*time.Millisecond, func() bool {
		return w.metric(`weir_websocket_connections{route="keyed"}`) == 0
	}) {
		t.Fatal("the tunnel did not end after both closes")
	}

	c = dialH2WebSocket(t, w.Addr, "/idle", nil)
	if c.resp.StatusCode != 200 {
		t.Fatalf("idle route: %d", c.resp.StatusCode)
	}
	<-up.hello
	start := time.Now()
	if op, got := c.recv(t); op != 0x8 || binary.BigEndian.Uint16(got) != 1001 {
		t.Fatalf("idle: op %d %q, want close 1001", op, got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("idle close took %v", d)
	}
	if code := up.closeCode(t); code != websocket.StatusGoingAway {
		t.Fatalf("upstream saw close %d, want 1001", code)
	}
}

// TestWebSocketOverHTTP2Advertised: the server's first SETTINGS frame
// carries SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 §3), read off the
// socket with x/net's Framer.
func TestWebSocketOverHTTP2Advertised(t *testing.T) {
	w := startWeir(t, `
listen: [{address: "{{LISTEN}}", http2: true}]
admin: {listen: "{{ADMIN}}"}
`)
	h := dialH2(t, w.Addr, 0)
	_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := h.fr
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first frame %v, want the server's SETTINGS", f)
	}
	if v, ok := sf.Value(http2.SettingEnableConnectProtocol); !ok || v != 1 {
		t.Fatalf("SETTINGS_ENABLE_CONNECT_PROTOCOL = %d (sent: %v), want 1", v, ok)
	}
}
