//lint:file-ignore SA1019 x/net/http2 names the frames and settings (RATIONALE.md)

package proxy

import (
	"bytes"
	"encoding/base64"
	"io"
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
	"github.com/weirgw/weir/internal/fusedio"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/proxy/tlsfront"
	"github.com/weirgw/weir/proxy/transport"
	"golang.org/x/net/http2"
	"golang.org/x/sys/unix"
)

// HTTP/2 to clients (RATIONALE.md, "HTTP/2 beside fasthttp"). fasthttp
// speaks HTTP/1.1 only, so connections that speak HTTP/2 go to the
// gateway's own HTTP/2 server (h2conn.go), which fills a pooled
// fasthttp.RequestCtx from each stream and runs the same handler as
// HTTP/1.1 (handle): routes, plugins, limits, metrics and logs see one
// request model whatever the client speaks. The answer, its body streamed
// as it comes, and the upstream's trailers go back as the stream's
// HEADERS, DATA and trailing HEADERS frames.
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
	// Limits and timeouts, from server: (initHTTP2).
	maxStreams     int
	maxHeaderBytes int
	readTimeout    time.Duration
	writeTimeout   time.Duration
	idleTimeout    time.Duration
	// h2c holds the cleartext listeners with http2: true.
	h2c atomic.Pointer[[]netip.AddrPort]
	// conns counts the HTTP/2 connections being served.
	conns  atomic.Int64
	rcPool sync.Pool
	// ipMu guards ipConns, the h2c connections per client address
	// (server.max_conns_per_ip).
	ipMu    sync.Mutex
	ipConns map[netip.Addr]int
	// liveMu guards live, the connections a drain sends GOAWAY, and
	// draining.
	liveMu   sync.Mutex
	live     map[*h2Conn]struct{}
	draining bool
	// wmu guards idle, the workers waiting for a stream (dispatch).
	wmu  sync.Mutex
	idle []chan *h2Stream
}

// h2IdleWorkers bounds the workers kept waiting for streams.
const h2IdleWorkers = 256

// track lists c for a drain (add), or takes it off; false: draining, and
// c is not served.
func (h *h2Front) track(c *h2Conn, add bool) bool {
	h.liveMu.Lock()
	defer h.liveMu.Unlock()
	if !add {
		delete(h.live, c)
		return true
	}
	if h.draining {
		return false
	}
	if h.live == nil {
		h.live = map[*h2Conn]struct{}{}
	}
	h.live[c] = struct{}{}
	return true
}

// dispatch runs st's handler on a waiting worker, or a new one: workers
// outlive their streams, so a stream costs neither a new goroutine nor
// the growth of its stack.
func (h *h2Front) dispatch(st *h2Stream) {
	h.wmu.Lock()
	if n := len(h.idle); n > 0 {
		w := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		h.wmu.Unlock()
		w <- st
		return
	}
	h.wmu.Unlock()
	go h.work(make(chan *h2Stream, 1), st)
}

// work runs streams: st, those its connection queued after it, then
// those dispatch hands it, until too many workers wait.
func (h *h2Front) work(w chan *h2Stream, st *h2Stream) {
	for {
		for st != nil {
			c := st.c
			c.s.serveH2Stream(st)
			next := c.done(st)
			c.s.releaseH2(st)
			st = next
		}
		h.wmu.Lock()
		if len(h.idle) >= h2IdleWorkers {
			h.wmu.Unlock()
			return
		}
		h.idle = append(h.idle, w)
		h.wmu.Unlock()
		st = <-w
	}
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
	h.maxStreams = sc.MaxConcurrentStreams
	h.maxHeaderBytes = sc.MaxHeaderBytes
	h.idleTimeout = sc.IdleTimeout.D()
	// Per stream: reading a request body and writing an answer, each
	// from its start (a body that trickles in, an answer the client
	// takes a little at a time). gRPC calls and WebSockets lift both:
	// they may stream for long. Per connection: a send that makes no
	// progress (a client that stopped reading, or floods PINGs whose
	// acknowledgements it never takes) ends it.
	h.readTimeout = sc.ReadTimeout.D()
	h.writeTimeout = sc.WriteTimeout.D()
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
			s.serveH2Conn(tc, tc, nil, nil)
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
	s.serveH2Conn(raw, c, nil, nil)
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

// h2StreamKey is the RequestCtx user value holding the stream (its
// Context: forwardH2).
type h2StreamKey struct{}

// fillH2Request makes st's request from its HEADERS (RFC 9113 §8.3): false
// for a malformed one, a stream error.
func (s *Server) fillH2Request(st *h2Stream, f *http2.MetaHeadersFrame) bool {
	rc := &st.rc
	req := &rc.Request
	var method, path, scheme, auth, proto, host string
	cookies := st.hb[:0]
	for _, hf := range f.Fields {
		if hf.IsPseudo() {
			switch hf.Name {
			case ":method":
				method = hf.Value
			case ":path":
				path = hf.Value
			case ":scheme":
				scheme = hf.Value
			case ":authority":
				auth = hf.Value
			case ":protocol":
				proto = hf.Value
			default:
				return false // :status
			}
			continue
		}
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return false // connection-specific (§8.2.2)
		case "te":
			if hf.Value != "trailers" {
				return false
			}
		case "host":
			host = hf.Value
			continue
		case "content-length":
			n, err := strconv.ParseUint(hf.Value, 10, 62)
			if err != nil || st.cl >= 0 && st.cl != int64(n) {
				return false
			}
			st.cl = int64(n)
			continue
		case "cookie":
			// Cookie fields are joined into one (§8.2.3).
			if len(cookies) > 0 {
				cookies = append(cookies, "; "...)
			}
			cookies = append(cookies, hf.Value...)
			continue
		}
		req.Header.Add(hf.Name, hf.Value)
	}
	st.hb = cookies[:0]
	if len(cookies) > 0 {
		req.Header.SetBytesV("Cookie", cookies)
	}
	switch {
	case method == "":
		return false
	case method == http.MethodConnect && proto == "":
		// CONNECT: the authority only.
		if auth == "" || path != "" || scheme != "" {
			return false
		}
		path = auth
	case proto != "":
		// Extended CONNECT (RFC 8441).
		if method != http.MethodConnect || path == "" || scheme == "" || auth == "" {
			return false
		}
		st.ws, st.connect = proto == "websocket", proto != "websocket"
	case path == "" || scheme == "":
		return false
	}
	if auth == "" {
		auth = host
	}
	req.Header.SetMethod(method)
	req.Header.SetRequestURI(path)
	req.Header.SetHost(auth)
	rc.SetUserValue(h2StreamKey{}, st)
	if st.ws {
		// RFC 8441: the HTTP/1.1 handshake the gateway and the upstream
		// know, its tunnel handed back through tun.
		req.Header.SetMethod(http.MethodGet)
		req.Header.SetCanonical(hdrUpgrade, valWebSocket)
		req.Header.SetCanonical(hdrConnection, valUpgrade)
		req.Header.Set("Sec-WebSocket-Key", newWebSocketKey())
		rc.SetUserValue(h2TunnelKey{}, &st.tun)
	}
	ct := req.Header.ContentType()
	st.grpc = isGRPC(b2s(ct))
	// A call may stream both ways for as long as it lasts; the upstream
	// call is bounded by the service's timeout and grpc-timeout instead.
	st.long = st.ws || st.grpc || grpcWebOf(ct) != 0
	if st.body != nil && !st.ws && st.cl != 0 {
		req.Header.SetContentLength(int(st.cl)) // -1: unknown, as a chunked body
		req.SetBodyStream(st.body, int(st.cl))
	}
	return true
}

// serveH2Stream runs one stream through the gateway's handler and sends
// the answer.
func (s *Server) serveH2Stream(st *h2Stream) {
	c := st.c
	if st.connect {
		// Extended CONNECT for a protocol the gateway does not relay.
		_, _ = c.writeHead(st, appendH2Status(st.hb[:0], http.StatusNotImplemented), nil, true)
		return
	}
	rc := &st.rc
	s.handle(rc)
	if !st.long && c.writeTO > 0 {
		// write_timeout bounds writing the whole answer, from here, as
		// fasthttp's write deadline does for HTTP/1.1 (docs/config.md):
		// a client that opens its window a little at a time does not
		// hold it for longer (writeData).
		st.wdl = time.Now().Add(c.writeTO)
	}
	resp := &rc.Response
	status := resp.StatusCode()
	if tun := st.tun; tun != nil {
		st.tun = nil
		s.serveH2WebSocket(st, resp, tun)
		return
	}
	if st.grpc && !isGRPC(b2s(resp.Header.ContentType())) && status != http.StatusOK {
		// The gateway's own answer (or a non-gRPC upstream's) to a gRPC
		// call: a gRPC status, trailers-only (SPEC: front door).
		st.hb = appendGRPCError(st.hb[:0], resp, status)
		_, _ = c.writeHead(st, st.hb, nil, true)
		return
	}
	head := string(rc.Request.Header.Method()) == http.MethodHead
	b := appendH2Fields(appendH2Status(st.hb[:0], status), resp, nil)
	if ct := resp.Header.ContentType(); len(ct) > 0 {
		b = appendH2Field(b, []byte("content-type"), ct)
	}
	stream := resp.IsBodyStream()
	if stream {
		if cl := resp.Header.ContentLength(); cl >= 0 {
			b = appendH2Field(b, []byte("content-length"), strconv.AppendInt(nil, int64(cl), 10))
		}
	} else if !head {
		var n [20]byte
		b = appendH2Field(b, []byte("content-length"), strconv.AppendInt(n[:0], int64(len(resp.Body())), 10))
	}
	st.hb = b
	switch {
	case head:
		_, _ = c.writeHead(st, b, nil, true)
	case !stream:
		rest, err := c.writeHead(st, b, resp.Body(), true)
		if err == nil && len(rest) > 0 {
			_ = c.writeData(st, rest, true)
		}
	default:
		if _, err := c.writeHead(st, b, nil, false); err != nil {
			return
		}
		up, _ := resp.BodyStream().(*transport.H2Body)
		_ = resp.BodyWriteTo(h2DataWriter{st})
		s.endH2Stream(st, up)
	}
}

// endH2Stream ends a streamed answer: the upstream's trailers, if any, in
// a HEADERS frame, else an empty DATA frame, each with END_STREAM.
func (s *Server) endH2Stream(st *h2Stream, up *transport.H2Body) {
	b := st.hb[:0]
	if up != nil {
		tr := up.Trailer()
		for k, vs := range tr {
			for _, v := range vs {
				b = appendH2Field(b, []byte(k), []byte(v))
			}
		}
		if err := up.Err(); err != nil && st.grpc && len(tr["Grpc-Status"]) == 0 {
			// The upstream call broke off mid-stream: the client gets a
			// status, not a stream that ends without one.
			code, msg := grpcBrokenOff(err)
			b = appendH2Field(b, []byte("grpc-status"), strconv.AppendInt(nil, int64(code), 10))
			b = appendH2Field(b, []byte("grpc-message"), []byte(msg))
		}
	}
	st.hb = b
	if len(b) > 0 {
		_ = st.c.writeTrailers(st, b)
		return
	}
	_ = st.c.writeData(st, nil, true)
}

// h2DataWriter sends each write as DATA: a streamed answer (server
// streaming, events) reaches the client as it comes.
type h2DataWriter struct{ st *h2Stream }

func (w h2DataWriter) Write(p []byte) (int, error) {
	if err := w.st.c.writeData(w.st, p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *Server) releaseH2(st *h2Stream) {
	st.rc.ResetUserValues()
	st.rc.Request.Reset()
	st.rc.Response.Reset() // closes a body stream
	st.c, st.id, st.body, st.tun = nil, 0, nil, nil
	st.sendWin, st.recvWin, st.recvOwed = 0, 0, 0
	st.remoteDone, st.reset, st.ended, st.queued = false, false, false, false
	st.ctx, st.cancel = nil, nil
	st.cl, st.got = -1, 0
	st.grpc, st.ws, st.connect, st.long, st.wsClosed = false, false, false, false, false
	st.wdl = time.Time{}
	if cap(st.hb) > 64<<10 {
		st.hb = nil
	}
	s.h2.rcPool.Put(st)
}

// skipH2Response: fields HTTP/2 does not carry (RFC 9113 §8.2.2) or that
// the bridge sets itself.
func skipH2Response(k []byte) bool {
	switch string(k) { // as fasthttp writes them, before any case
	case "Content-Type", "Content-Length", "Connection":
		return true
	case "Date", "X-Request-Id", "Server":
		return false
	}
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
// their streams and open new ones elsewhere; each connection closes when
// its last stream ends.
func (s *Server) shutdownHTTP2() {
	h := &s.h2
	h.liveMu.Lock()
	h.draining = true
	live := make([]*h2Conn, 0, len(h.live))
	for c := range h.live {
		live = append(live, c)
	}
	h.liveMu.Unlock()
	for _, c := range live {
		c.end(http2.ErrCodeNo)
	}
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
	var up fasthttp.RequestHeader
	h.CopyTo(&up)
	rc.HijackSetNoResponse(true)
	rc.Hijack(func(hc net.Conn) {
		c, ok := h2cConnOf(hc, rc)
		if !ok {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil {
			return
		}
		s.serveH2Conn(c, c, &up, raw)
	})
	return true
}
