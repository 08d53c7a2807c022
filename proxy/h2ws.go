package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// WebSocket over HTTP/2 (RFC 8441). The HTTP/2 server advertises
// SETTINGS_ENABLE_CONNECT_PROTOCOL; a client opens a WebSocket with a
// stream whose :method is CONNECT and :protocol websocket. The server
// (fillH2Request) makes it the HTTP/1.1 handshake the rest of the gateway knows
// (GET, Upgrade: websocket, a fresh Sec-WebSocket-Key): the route's
// request plugins judge it, upgrade sends it to a target, and on the
// target's 101 the client gets 200 and the stream joins the upstream's
// connection through the same tunnel as an HTTP/1.1 WebSocket
// (wstunnel.go), the stream standing in for the client's connection
// (h2WSConn). Frames are the same on both: RFC 8441 keeps RFC 6455's
// framing and masking.

// h2TunnelKey is the RequestCtx user value through which upgrade hands an
// HTTP/2 stream's tunnel back to serveH2Stream instead of hijacking.
type h2TunnelKey struct{}

// newWebSocketKey is a Sec-WebSocket-Key for the upstream's handshake:
// an HTTP/2 client sends none (RFC 8441 §5).
func newWebSocketKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// h2WSConn is an HTTP/2 stream as the tunnel's client connection: reads
// take the request body (its DATA frames), writes send DATA frames, and
// deadlines are the stream's own: a read waiting, or a write waiting for
// the client's window, gives up when its deadline passes, as on a socket.
type h2WSConn struct {
	st            *h2Stream
	p             *h2Pipe
	local, remote net.Addr
	rd            streamDeadline

	closed    chan struct{}
	closeOnce sync.Once
}

func (c *h2WSConn) Read(p []byte) (int, error) { return c.p.Read(p) }

func (c *h2WSConn) Write(p []byte) (int, error) {
	hc := c.st.c
	hc.mu.Lock()
	dl := c.st.wdl
	hc.mu.Unlock()
	if !dl.IsZero() && !time.Now().Before(dl) {
		return 0, os.ErrDeadlineExceeded
	}
	err := hc.writeData(c.st, p, false)
	switch {
	case err == errH2Timeout:
		return 0, os.ErrDeadlineExceeded
	case err != nil:
		return 0, err
	}
	return len(p), nil
}

func (c *h2WSConn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return nil
}

// SetWriteDeadline: a write waiting wakes and looks at it again.
func (c *h2WSConn) SetWriteDeadline(t time.Time) error {
	hc := c.st.c
	hc.mu.Lock()
	c.st.wdl = t
	hc.cond.Broadcast()
	hc.mu.Unlock()
	return nil
}

func (c *h2WSConn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// Close ends the tunnel's use of the stream: reads and writes fail, a
// write waiting wakes; the handler then ends the stream.
func (c *h2WSConn) Close() error {
	c.closeOnce.Do(func() {
		c.p.finish(net.ErrClosed)
		hc := c.st.c
		hc.mu.Lock()
		c.st.wsClosed = true
		hc.cond.Broadcast()
		hc.mu.Unlock()
		close(c.closed)
	})
	return nil
}

func (c *h2WSConn) LocalAddr() net.Addr  { return c.local }
func (c *h2WSConn) RemoteAddr() net.Addr { return c.remote }

// streamDeadline is a read deadline as a channel closed when it passes,
// settable again at any time (as a socket's).
type streamDeadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func (d *streamDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	closed := false
	select {
	case <-d.cancel:
		closed = true
	default:
	}
	if t.IsZero() || time.Until(t) > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		if !t.IsZero() {
			ch := d.cancel
			d.timer = time.AfterFunc(time.Until(t), func() { close(ch) })
		}
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *streamDeadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// serveH2WebSocket answers an extended CONNECT the upstream accepted
// (resp is its 101) with 200 and the upstream's WebSocket fields, then
// runs the tunnel on the stream until it ends, and ends the stream.
func (s *Server) serveH2WebSocket(st *h2Stream, resp *fasthttp.Response, tun *tunnel) {
	st.hb = appendH2Fields(appendH2Status(st.hb[:0], http.StatusOK), resp, []byte("Sec-WebSocket-Accept"))
	_, _ = st.c.writeHead(st, st.hb, nil, false)
	conn := st.rc.Conn()
	sc := &h2WSConn{st: st, p: st.body, local: conn.LocalAddr(), remote: conn.RemoteAddr(), closed: make(chan struct{})}
	sc.rd.cancel = make(chan struct{})
	sc.p.dl = &sc.rd
	tun.run(sc)
	<-sc.closed
	c := st.c
	c.mu.Lock()
	st.wsClosed = false
	c.mu.Unlock()
	_ = c.writeData(st, nil, true)
}
