//lint:file-ignore SA1019 x/net/http2 is deprecated in favour of net/http, which cannot serve one connection handed over by fasthttp (ServeConn) nor take Upgrade: h2c (RATIONALE.md)

package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/acceptretry"
	"github.com/weirgw/weir/internal/coalesce"
	"github.com/weirgw/weir/internal/fusedio"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/proxy/tlsfront"
	"github.com/weirgw/weir/proxy/transport"
	"golang.org/x/net/http2"
	"golang.org/x/sys/unix"
)

// HTTP/2 to clients (RATIONALE.md, "HTTP/2 beside fasthttp"). fasthttp
// speaks HTTP/1.1 only, so connections that speak HTTP/2 are handed to
// golang.org/x/net/http2's server, whose handler fills a pooled
// fasthttp.RequestCtx from each stream and runs the same handler as
// HTTP/1.1 (handle): routes, plugins, limits, metrics and logs see one
// request model whatever the client speaks. The answer, its body streamed
// and flushed as it comes, and the upstream's trailers go back through the
// stream's http.ResponseWriter.
//
// A connection becomes HTTP/2 three ways, all only on listeners with
// http2: true:
//   - TLS: ALPN chose h2 (tlsfront offers it); fasthttp's NextProto hands
//     the connection over after the handshake, before any HTTP/1.1 parse.
//   - cleartext, prior knowledge: the connection starts with the HTTP/2
//     preface, which a peek at its first bytes finds before fasthttp
//     gets the connection (ServeHTTP2); elsewhere fasthttp refuses it.
//   - cleartext, Upgrade: h2c on a request without a body: 101, then the
//     request is stream 1 of the new HTTP/2 connection.
//
// The HTTP/1.1 path of other listeners pays nothing: the peek is on
// http2 listeners only, and the upgrade is looked for in the hop-by-hop
// branch that a request with Upgrade already takes.

// h2Front is the server's HTTP/2 side.
type h2Front struct {
	srv  http2.Server
	base http.Server // limits and timeouts for ServeConn; Shutdown sends GOAWAY
	// h2c holds the cleartext listeners with http2: true.
	h2c atomic.Pointer[[]netip.AddrPort]
	// conns counts the HTTP/2 connections being served.
	conns  atomic.Int64
	rcPool sync.Pool
	// writeByteTimeout bounds each send of a connection's writer.
	writeByteTimeout time.Duration
	// ipMu guards ipConns, the h2c connections per client address
	// (server.max_conns_per_ip).
	ipMu    sync.Mutex
	ipConns map[netip.Addr]int
}

// perIP adds d to the h2c connections of c's client; false (and nothing
// added) when that would pass max (0: no limit).
func (h *h2Front) perIP(c net.Conn, max, d int) bool {
	if max <= 0 {
		return true
	}
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return true
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	ip = ip.Unmap()
	h.ipMu.Lock()
	defer h.ipMu.Unlock()
	n := h.ipConns[ip] + d
	if d > 0 && n > max {
		return false
	}
	if h.ipConns == nil {
		h.ipConns = map[netip.Addr]int{}
	}
	if n <= 0 {
		delete(h.ipConns, ip)
	} else {
		h.ipConns[ip] = n
	}
	return true
}

func (s *Server) initHTTP2(cfg *config.Config) {
	h := &s.h2
	sc := cfg.Server
	h.base = http.Server{
		MaxHeaderBytes: sc.MaxHeaderBytes,
		IdleTimeout:    sc.IdleTimeout.D(),
		// Per stream: a body that stalls, an answer the client does not
		// read. gRPC calls lift both (serveH2): they may stream for long.
		ReadTimeout:  sc.ReadTimeout.D(),
		WriteTimeout: sc.WriteTimeout.D(),
		// x/net's connection errors (a client's protocol violation) at
		// debug, in the gateway's log format.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	h.srv = http2.Server{
		MaxConcurrentStreams: uint32(sc.MaxConcurrentStreams),
		IdleTimeout:          sc.IdleTimeout.D(),
		// Upload buffers: what a client may send ahead of the handler.
		MaxUploadBufferPerConnection: 1 << 20,
		MaxUploadBufferPerStream:     256 << 10,
	}
	// A client that stops reading (a PING or SETTINGS flood whose
	// acknowledgements it never takes) stalls the connection's writer;
	// past write_timeout without progress the connection closes. The
	// coalescing writer of each connection (serveH2Conn) enforces it.
	h.writeByteTimeout = sc.WriteTimeout.D()
	// Registers the GOAWAY of every connection on base.Shutdown.
	_ = http2.ConfigureServer(&h.base, &h.srv)
	h.rcPool.New = func() any { return new(h2Stream) }
	// TLS: ALPN's h2 hands the connection over after the handshake.
	s.fs.NextProto(http2.NextProtoTLS, s.serveH2TLS)
}

// ServeHTTP2 serves ln like Serve, with HTTP/2 beside HTTP/1.1 (listen[].
// http2: true): h2 through ALPN on a TLS listener (its Front offers it),
// h2c on a cleartext one. There each new connection is looked at (a peek,
// nothing read) until its first bytes tell: the HTTP/2 preface goes to
// the HTTP/2 server, anything else to fasthttp as on any listener.
func (s *Server) ServeHTTP2(ln net.Listener) error {
	tcp, ok := ln.(*net.TCPListener)
	if !ok {
		return s.Serve(ln)
	}
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil {
		for {
			old := s.h2.h2c.Load()
			var list []netip.AddrPort
			if old != nil {
				list = append(list, *old...)
			}
			list = append(list, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			if s.h2.h2c.CompareAndSwap(old, &list) {
				break
			}
		}
	}
	fl := fusedio.Listener{Listener: tcp, Slack: deadlineSlack(s.fs), Open: &s.drain.open}
	if !s.drain.serving(fl) {
		return nil
	}
	al := &acceptretry.Listener{Listener: tcp, State: &s.accept, Log: s.log}
	for {
		nc, err := al.Accept()
		if err != nil {
			if s.drain.draining.Load() {
				return nil
			}
			return err
		}
		go s.serveSniffed(fl, nc)
	}
}

// serveSniffed serves a new cleartext connection of an http2 listener.
func (s *Server) serveSniffed(fl fusedio.Listener, nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
		if peekH2Preface(tc, s.fs.ReadTimeout) {
			// fasthttp counts the connections it serves; these are
			// counted here against the same limits.
			if max := int64(s.fs.Concurrency); max > 0 && s.h2.conns.Load() >= max || !s.h2.perIP(tc, s.fs.MaxConnsPerIP, 1) {
				_ = tc.Close() // server.max_conns, server.max_conns_per_ip
				return
			}
			s.serveH2Conn(tc, tc, nil)
			s.h2.perIP(tc, s.fs.MaxConnsPerIP, -1)
			_ = tc.Close()
			return
		}
	}
	_ = s.fs.ServeConn(fl.Wrap(nc))
}

// h2Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// peekH2Preface reports whether the connection starts with the HTTP/2
// preface, without reading: MSG_PEEK until the bytes there differ from it
// or hold all of it, within timeout. The rare client whose preface comes
// in pieces is polled for at most 50 ms.
func peekH2Preface(tc *net.TCPConn, timeout time.Duration) bool {
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	if timeout > 0 {
		_ = tc.SetReadDeadline(time.Now().Add(timeout))
		defer tc.SetReadDeadline(time.Time{})
	}
	var buf [len(h2Preface)]byte
	for tries := 0; tries < 50; tries++ {
		var n int
		var errno unix.Errno
		err := rc.Read(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
				unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
			n, errno = int(r), e
			return e != unix.EAGAIN
		})
		if err != nil || errno != 0 || n <= 0 {
			return false // timed out, closed or failed: fasthttp tells the client
		}
		if string(buf[:n]) != h2Preface[:n] {
			return false
		}
		if n == len(h2Preface) {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// h2cOn reports whether the connection of rc came through a cleartext
// listener with http2: true.
func (s *Server) h2cOn(rc *fasthttp.RequestCtx) bool {
	list := s.h2.h2c.Load()
	if list == nil {
		return false
	}
	la, ok := rc.LocalAddr().(*net.TCPAddr)
	if !ok {
		return false
	}
	a, _ := netip.AddrFromSlice(la.IP)
	a = a.Unmap()
	for _, ap := range *list {
		if ap.Port() == uint16(la.Port) && (ap.Addr().IsUnspecified() || ap.Addr() == a) {
			return true
		}
	}
	return false
}

// serveH2TLS serves a TLS connection whose ALPN chose h2.
func (s *Server) serveH2TLS(c net.Conn) error {
	raw := c
	if tc, ok := c.(*tlsfront.Conn); ok {
		// The tls.Conn itself, safe for HTTP/2's concurrent reader and
		// writer; c stays what plugins see (client certificate, IsTLS).
		raw = tc.Conn
	}
	s.serveH2Conn(raw, c, nil)
	return nil
}

// h2cConnOf makes the hijacked connection safe for HTTP/2's concurrent
// reader and writer: reads go through hc (the bytes fasthttp buffered,
// then the socket), writes and deadlines to the TCP connection itself
// (package fusedio's are for one goroutine).
func h2cConnOf(hc net.Conn, rc *fasthttp.RequestCtx) (net.Conn, bool) {
	fc, ok := rc.Conn().(*fusedio.Conn)
	if !ok {
		return hc, true
	}
	tcp, err := fc.Detach()
	if err != nil {
		return nil, false
	}
	return &h2cConn{Conn: tcp, r: hc}, true
}

// h2cConn reads through the hijacked connection, the rest goes to the
// TCP connection.
type h2cConn struct {
	net.Conn
	r io.Reader
}

func (c *h2cConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// NetConn is the TCP connection.
func (c *h2cConn) NetConn() net.Conn { return c.Conn }

// serveH2Conn serves one HTTP/2 connection until it ends. raw is read and
// written; conn is what each stream's RequestCtx reports as its
// connection (addresses, TLS state, client certificate).
func (s *Server) serveH2Conn(raw, conn net.Conn, opts *http2.ServeConnOpts) {
	if opts == nil {
		opts = &http2.ServeConnOpts{}
	}
	s.h2.conns.Add(1)
	defer s.h2.conns.Add(-1)
	opts.BaseConfig = &s.h2.base
	opts.Context = context.Background()
	opts.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveH2(conn, w, r)
	})
	if s.drain.draining.Load() {
		return
	}
	// x/net flushes per frame when its queue runs empty; the flushes
	// made while one is being sent go out together (package coalesce).
	s.h2.srv.ServeConn(coalesce.New(raw, s.h2.writeByteTimeout), opts)
}

// h2Stream is the pooled per-stream state of the bridge.
type h2Stream struct {
	rc  fasthttp.RequestCtx
	fw  flushWriter
	tun *tunnel // an extended CONNECT's tunnel, once the upstream said 101
}

// h2StreamKey is the RequestCtx user value holding the stream's context.
type h2StreamKey struct{}

// h2Body is a stream's request body as the pipeline reads it. Made for
// each stream with a body, not pooled with it: an HTTP/2 upstream's
// client may read it after the handler returned (streamedBody), and then
// gets x/net's "body closed" from the stream's own body.
type h2Body struct{ r io.Reader }

func (b *h2Body) Read(p []byte) (int, error) { return b.r.Read(p) }

// flushWriter flushes each write: a streamed answer (server streaming,
// events) reaches the client as it comes.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if f.f != nil {
		f.f.Flush()
	}
	return n, err
}

// serveH2 runs one HTTP/2 stream through the gateway's handler.
func (s *Server) serveH2(conn net.Conn, w http.ResponseWriter, r *http.Request) {
	hs := s.h2.rcPool.Get().(*h2Stream)
	rc := &hs.rc
	rc.Init2(conn, fasthttpLogger{s.log}, false)
	// The stream's context: its end cancels the upstream call (forwardH2).
	rc.SetUserValue(h2StreamKey{}, r.Context())
	ws, other := isExtendedConnect(r)
	if other {
		// Extended CONNECT for a protocol the gateway does not relay.
		w.WriteHeader(http.StatusNotImplemented)
		s.releaseH2(hs)
		return
	}
	req := &rc.Request
	req.Header.SetMethod(r.Method)
	req.Header.SetRequestURI(r.RequestURI)
	req.Header.SetHost(r.Host)
	for k, vs := range r.Header {
		if k == ":protocol" { // a pseudo-header, not a field
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if ws {
		// RFC 8441: the HTTP/1.1 handshake the gateway and the upstream
		// know, its tunnel handed back through tun.
		req.Header.SetMethod(http.MethodGet)
		req.Header.SetCanonical(hdrUpgrade, valWebSocket)
		req.Header.SetCanonical(hdrConnection, valUpgrade)
		req.Header.Set("Sec-WebSocket-Key", newWebSocketKey())
		rc.SetUserValue(h2TunnelKey{}, &hs.tun)
	}
	grpc := isGRPC(r.Header.Get("Content-Type"))
	if ws || grpc || grpcWebOf([]byte(r.Header.Get("Content-Type"))) != 0 {
		// A call may stream both ways for as long as it lasts; the
		// upstream call is bounded by the service's timeout and
		// grpc-timeout instead.
		ctl := http.NewResponseController(w)
		_ = ctl.SetReadDeadline(time.Time{})
		_ = ctl.SetWriteDeadline(time.Time{})
	}
	if !ws && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		cl := int(r.ContentLength) // -1: unknown, as a chunked body
		req.Header.SetContentLength(cl)
		req.SetBodyStream(&h2Body{r: r.Body}, cl)
	}

	s.handle(rc)

	resp := &rc.Response
	status := resp.StatusCode()
	h := w.Header()
	if tun := hs.tun; tun != nil {
		hs.tun = nil
		s.serveH2WebSocket(conn, w, r, resp, tun)
		s.releaseH2(hs)
		return
	}
	if grpc && !isGRPC(string(resp.Header.ContentType())) && status != http.StatusOK {
		// The gateway's own answer (or a non-gRPC upstream's) to a gRPC
		// call: a gRPC status, trailers-only (SPEC: front door).
		writeGRPCError(w, resp, status)
		s.releaseH2(hs)
		return
	}
	var up *transport.H2Body
	for k, v := range resp.Header.All() {
		if skipH2Response(k) {
			continue
		}
		h.Add(string(k), string(v))
	}
	if ct := resp.Header.ContentType(); len(ct) > 0 {
		h.Set("Content-Type", string(ct))
	}
	stream := resp.IsBodyStream()
	if stream {
		up, _ = resp.BodyStream().(*transport.H2Body)
		if up != nil {
			for _, t := range up.Declared() {
				h.Add("Trailer", t)
			}
		}
		if cl := resp.Header.ContentLength(); cl >= 0 {
			h.Set("Content-Length", strconv.Itoa(cl))
		}
	} else if r.Method != http.MethodHead {
		h.Set("Content-Length", strconv.Itoa(len(resp.Body())))
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		if stream {
			hs.fw = flushWriter{w: w}
			hs.fw.f, _ = w.(http.Flusher)
			_ = resp.BodyWriteTo(&hs.fw)
			hs.fw = flushWriter{}
		} else {
			_, _ = w.Write(resp.Body())
		}
	}
	if up != nil {
		tr := up.Trailer()
		for k, vs := range tr {
			for _, v := range vs {
				h.Add(http.TrailerPrefix+k, v)
			}
		}
		if err := up.Err(); err != nil && grpc && len(tr["Grpc-Status"]) == 0 {
			// The upstream call broke off mid-stream: the client gets a
			// status, not a stream that ends without one.
			code, msg := grpcBrokenOff(err)
			h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(code))
			h.Set(http.TrailerPrefix+"Grpc-Message", msg)
		}
	}
	s.releaseH2(hs)
}

func (s *Server) releaseH2(hs *h2Stream) {
	hs.rc.ResetUserValues()
	hs.rc.Request.Reset()
	hs.rc.Response.Reset() // closes a body stream
	s.h2.rcPool.Put(hs)
}

// skipH2Response: fields HTTP/2 does not carry (RFC 9113 §8.2.2) or that
// the bridge sets itself.
func skipH2Response(k []byte) bool {
	switch len(k) {
	case 10:
		return bytes.EqualFold(k, []byte("Connection")) || bytes.EqualFold(k, []byte("Keep-Alive"))
	case 7:
		return bytes.EqualFold(k, []byte("Upgrade")) || bytes.EqualFold(k, []byte("Trailer"))
	case 17:
		return bytes.EqualFold(k, []byte("Transfer-Encoding"))
	case 14:
		return bytes.EqualFold(k, []byte("Content-Length"))
	case 12:
		return bytes.EqualFold(k, []byte("Content-Type"))
	case 16:
		return bytes.EqualFold(k, []byte("Proxy-Connection"))
	}
	return false
}

// shutdownHTTP2 sends GOAWAY on every HTTP/2 connection: clients finish
// their streams and open new ones elsewhere.
func (s *Server) shutdownHTTP2() {
	if s.h2.conns.Load() == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // GOAWAY now; the connections close when their streams end
	_ = s.h2.base.Shutdown(ctx)
}

// tryH2CUpgrade switches a cleartext HTTP/1.1 connection to HTTP/2 when
// its request asks (Upgrade: h2c with HTTP2-Settings, RFC 7540 §3.2) on a
// listener with http2: true: 101, then the request is answered as stream 1.
// A request with a body keeps HTTP/1.1 (a server may ignore Upgrade), as
// do a malformed HTTP2-Settings and every other listener.
func (s *Server) tryH2CUpgrade(rc *fasthttp.RequestCtx) bool {
	h := &rc.Request.Header
	if !bytes.EqualFold(h.Peek("Upgrade"), []byte("h2c")) || !s.h2cOn(rc) {
		return false
	}
	settings := h.Peek("Http2-Settings")
	if len(settings) == 0 || h.ContentLength() != -2 && h.ContentLength() != 0 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(settings), "="))
	if err != nil {
		return false
	}
	hr, err := http.NewRequest(string(h.Method()), "http://"+string(h.Host())+string(h.RequestURI()), nil)
	if err != nil {
		return false
	}
	hr.RequestURI = string(h.RequestURI())
	hr.RemoteAddr = rc.RemoteAddr().String()
	for k, v := range h.All() {
		switch strings.ToLower(string(k)) {
		case "connection", "upgrade", "http2-settings", "host", "keep-alive", "content-length", "transfer-encoding":
			continue
		}
		hr.Header.Add(string(k), string(v))
	}
	rc.HijackSetNoResponse(true)
	rc.Hijack(func(hc net.Conn) {
		c, ok := h2cConnOf(hc, rc)
		if !ok {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil {
			return
		}
		s.serveH2Conn(c, c, &http2.ServeConnOpts{UpgradeRequest: hr, Settings: raw})
	})
	return true
}
