package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	// Extended CONNECT on in x/net/http2's server (see the package).
	_ "github.com/weirgw/weir/internal/h2xconnect"
)

// WebSocket over HTTP/2 (RFC 8441). The HTTP/2 server advertises
// SETTINGS_ENABLE_CONNECT_PROTOCOL; a client opens a WebSocket with a
// stream whose :method is CONNECT and :protocol websocket. The bridge
// (serveH2) makes it the HTTP/1.1 handshake the rest of the gateway knows
// (GET, Upgrade: websocket, a fresh Sec-WebSocket-Key): the route's
// request plugins judge it, upgrade sends it to a target, and on the
// target's 101 the client gets 200 and the stream joins the upstream's
// connection through the same tunnel as an HTTP/1.1 WebSocket
// (wstunnel.go), the stream standing in for the client's connection
// (h2StreamConn). Frames are the same on both: RFC 8441 keeps RFC 6455's
// framing and masking.

// h2TunnelKey is the RequestCtx user value through which upgrade hands an
// HTTP/2 stream's tunnel back to serveH2 instead of hijacking.
type h2TunnelKey struct{}

// isExtendedConnect reports whether an HTTP/2 request opens a WebSocket
// (RFC 8441 §4) and, for another :protocol, that it is extended CONNECT
// at all.
func isExtendedConnect(r *http.Request) (ws, other bool) {
	if r.Method != http.MethodConnect {
		return false, false
	}
	p := r.Header.Get(":protocol")
	return p == "websocket", p != "" && p != "websocket"
}

// newWebSocketKey is a Sec-WebSocket-Key for the upstream's handshake:
// an HTTP/2 client sends none (RFC 8441 §5).
func newWebSocketKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// h2StreamConn is an HTTP/2 stream as the tunnel's client connection:
// reads from the request body, writes to the answer (flushed), and
// deadlines of its own, since x/net's end the stream when they pass,
// where a socket's only interrupt a read or write under way (the tunnel
// moves them, and wakes its pumps with them).
type h2StreamConn struct {
	body          io.ReadCloser
	w             io.Writer
	f             http.Flusher
	ctl           *http.ResponseController
	local, remote net.Addr

	in   chan h2Chunk  // the body, a chunk at a time, from reader
	ack  chan struct{} // a chunk was read through: reader may reuse its buffer
	pend []byte
	rerr error
	rd   streamDeadline

	wmu      sync.Mutex // held by a write; finished set under it
	finished bool
	writing  atomic.Bool
	wdl      atomic.Int64 // write deadline, UnixNano (0: none)

	// mu guards wtimer and gone: the handler returned, and x/net's
	// ResponseController must not be used any more.
	mu     sync.Mutex
	wtimer *time.Timer
	gone   bool

	closed    chan struct{}
	closeOnce sync.Once
}

type h2Chunk struct {
	b   []byte
	err error
}

func newH2StreamConn(body io.ReadCloser, w http.ResponseWriter, conn net.Conn) *h2StreamConn {
	c := &h2StreamConn{body: body, w: w, ctl: http.NewResponseController(w),
		local: conn.LocalAddr(), remote: conn.RemoteAddr(),
		in: make(chan h2Chunk), ack: make(chan struct{}, 1), closed: make(chan struct{})}
	c.f, _ = w.(http.Flusher)
	c.rd.cancel = make(chan struct{})
	go c.reader()
	return c
}

// reader reads the stream's body: one chunk, handed to Read, then the next
// once Read has taken it all (backpressure: HTTP/2 flow control holds the
// client back meanwhile).
func (c *h2StreamConn) reader() {
	buf := make([]byte, wsBufSize)
	for {
		n, err := c.body.Read(buf)
		select {
		case c.in <- h2Chunk{buf[:n], err}:
		case <-c.closed:
			return
		}
		if err != nil {
			return
		}
		select {
		case <-c.ack:
		case <-c.closed:
			return
		}
	}
}

func (c *h2StreamConn) Read(p []byte) (int, error) {
	if len(c.pend) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		select {
		case ch := <-c.in:
			c.pend, c.rerr = ch.b, ch.err
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		case <-c.closed:
			return 0, net.ErrClosed
		}
		if len(c.pend) == 0 {
			if c.rerr == nil {
				c.ack <- struct{}{}
			}
			return 0, c.rerr
		}
	}
	n := copy(p, c.pend)
	c.pend = c.pend[n:]
	if len(c.pend) == 0 && c.rerr == nil {
		c.ack <- struct{}{}
	}
	return n, nil
}

func (c *h2StreamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.finished {
		return 0, net.ErrClosed
	}
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.writing.Store(true)
	defer c.writing.Store(false)
	if dl := c.wdl.Load(); dl != 0 && time.Now().UnixNano() >= dl {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := c.w.Write(p)
	if err == nil && c.f != nil {
		c.f.Flush()
	}
	return n, err
}

// SetWriteDeadline: a write still under way when it passes ends the
// stream (x/net's deadline, set to the past, resets it), which is what a
// peer that stopped reading gets from the tunnel on a socket too.
func (c *h2StreamConn) SetWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	c.wdl.Store(ns)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wtimer != nil {
		c.wtimer.Stop()
		c.wtimer = nil
	}
	if ns != 0 && !c.gone {
		c.wtimer = time.AfterFunc(time.Until(t), func() {
			if dl := c.wdl.Load(); dl != 0 && time.Now().UnixNano() >= dl {
				c.cut()
			}
		})
	}
	return nil
}

// cut ends a write under way: x/net's write deadline in the past resets
// the stream.
func (c *h2StreamConn) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gone && c.writing.Load() {
		_ = c.ctl.SetWriteDeadline(time.Unix(1, 0))
	}
}

func (c *h2StreamConn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return nil
}

func (c *h2StreamConn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// Close ends the stream: reads and writes fail, a write under way is cut.
func (c *h2StreamConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.body.Close()
		c.cut()
		close(c.closed) // last: wait lets the handler return
	})
	return nil
}

// wait blocks until Close, then until no write is under way: after it
// the handler may return (x/net forbids writes after that).
func (c *h2StreamConn) wait() {
	<-c.closed
	c.wmu.Lock()
	c.finished = true
	c.wmu.Unlock()
	c.mu.Lock()
	c.gone = true
	if c.wtimer != nil {
		c.wtimer.Stop()
	}
	c.mu.Unlock()
}

func (c *h2StreamConn) LocalAddr() net.Addr  { return c.local }
func (c *h2StreamConn) RemoteAddr() net.Addr { return c.remote }

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
// runs the tunnel on the stream until it ends.
func (s *Server) serveH2WebSocket(conn net.Conn, w http.ResponseWriter, r *http.Request, resp *fasthttp.Response, tun *tunnel) {
	h := w.Header()
	for k, v := range resp.Header.All() {
		if skipH2Response(k) || bytes.EqualFold(k, []byte("Sec-WebSocket-Accept")) {
			continue
		}
		h.Add(string(k), string(v))
	}
	w.WriteHeader(http.StatusOK)
	sc := newH2StreamConn(r.Body, w, conn)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	tun.run(sc)
	sc.wait()
}
