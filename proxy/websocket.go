package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/httpsyntax"
	"github.com/weirgw/weir/pool"
	"github.com/weirgw/weir/proxy/transport"
	"github.com/weirgw/weir/sdk"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// WebSocket over HTTP/1.1 (RFC 6455). A handshake is routed like any
// request and runs the route's request-side plugins, so key_auth, jwt,
// acl, rate_limit and ip_restriction refuse it with their usual answers.
// Then upgrade sends it to a target the service's balancer picks, on a
// connection of its own, and when the target answers 101 the client's
// connection is hijacked from fasthttp and the two are joined by a tunnel
// (wstunnel.go) until either side closes, websocket.idle_timeout passes or
// the server drains. Only the handshake is HTTP: the gateway does not
// parse messages, it follows frame boundaries only to close cleanly.

var (
	hdrUpgrade    = []byte("Upgrade")
	hdrConnection = []byte("Connection")
	hdrWSVersion  = []byte("Sec-WebSocket-Version")
	valWebSocket  = []byte("websocket")
	valUpgrade    = []byte("Upgrade")
	val13         = []byte("13")
)

// isWebSocket reports whether a request asks to switch to WebSocket: its
// Upgrade field names websocket and its Connection field names upgrade
// (RFC 9110 §7.8: an Upgrade that Connection does not list is not meant
// for this hop, and is dropped like any hop-by-hop field). A request
// that also asks to close its connection is not one: there would be no
// connection left to switch.
func isWebSocket(h *fasthttp.RequestHeader) bool {
	return hasToken(h.PeekBytes(hdrUpgrade), "websocket") &&
		hasToken(h.PeekBytes(hdrConnection), "upgrade") && !h.ConnectionClose()
}

// hasToken reports whether a comma-separated field value holds tok,
// compared case-insensitively (tok in lower case).
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var t []byte
		t, v = nextToken(v)
		if httpsyntax.EqualFoldLower(t, tok) {
			return true
		}
	}
	return false
}

// checkHandshake answers 400 to a handshake RFC 6455 §4.2.1 says a server
// must refuse, and reports whether it may go on. An unsupported version
// gets the version the gateway speaks in Sec-WebSocket-Version (§4.4).
// The upstream would refuse these too; answering here spares it, and
// keeps a broken client from counting as a failing target.
func checkHandshake(c *sdk.Ctx) bool {
	h := &c.Request().Header
	msg, version := "", false
	switch {
	case !h.IsGet():
		msg = "a WebSocket handshake is a GET request"
	case !h.IsHTTP11():
		msg = "a WebSocket handshake needs HTTP/1.1"
	case h.ContentLength() > 0 || h.ContentLength() == -1:
		msg = "a WebSocket handshake has no body"
	case !bytes.Equal(h.PeekBytes(hdrWSVersion), val13):
		msg, version = "unsupported Sec-WebSocket-Version: use 13", true
	case !validWebSocketKey(h.Peek("Sec-WebSocket-Key")):
		msg = "missing or invalid Sec-WebSocket-Key: send 16 random bytes in base64"
	default:
		return true
	}
	c.Fail(fasthttp.StatusBadRequest, msg)
	if version {
		c.RequestCtx().Response.Header.SetCanonical(hdrWSVersion, val13)
	}
	return false
}

// validWebSocketKey: the key is 16 bytes in base64 (§4.1), 24 characters.
func validWebSocketKey(k []byte) bool {
	var b [18]byte
	if len(k) != 24 {
		return false
	}
	n, err := base64.StdEncoding.Decode(b[:], k)
	return err == nil && n == 16
}

// upgrade forwards a WebSocket handshake (the request-side plugins have
// passed it) and, on a 101, hands the client's connection to a tunnel.
// Tries are as forward's: another target after a connect error or an
// answer that did not come, and each try counts for the target's health
// and circuit breaker as a proxied request would. A non-101 answer (the
// upstream refusing the upgrade) goes back to the client as it is.
func (s *Server) upgrade(c *sdk.Ctx, r *route, st *reqState) time.Duration {
	rc := c.RequestCtx()
	req, resp := &rc.Request, &rc.Response
	svc := r.svc
	switch {
	case svc == nil:
		s.fail(c, r, fasthttp.StatusServiceUnavailable, "route has no service")
		return 0
	case s.drain.draining.Load():
		// A WebSocket opened now would be told to go away at once: the
		// client should reconnect, to the process that took over.
		s.fail(c, r, fasthttp.StatusServiceUnavailable, "server is shutting down")
		rc.SetConnectionClose()
		return 0
	case !s.ws.reserve():
		s.fail(c, r, fasthttp.StatusServiceUnavailable, "too many WebSockets: server.max_websockets reached")
		return 0
	}
	reserved := true
	defer func() {
		if reserved {
			s.ws.unreserve()
		}
	}()
	pluginHost, _ := s.prepareUpstream(c, st)
	// The upgrade is hop-by-hop: prepareUpstream dropped it with the
	// others, and this hop asks for it again.
	req.Header.SetCanonical(hdrUpgrade, valWebSocket)
	req.Header.SetCanonical(hdrConnection, valUpgrade)

	hashKey := s.hashKey(c, svc, st)
	var exclude *pool.Member
	var waited time.Duration
	var lastErr error
	for attempt := 0; attempt < svc.retries+1; attempt++ {
		m, t := s.nextTarget(c, r, st, hashKey, exclude, lastErr == nil, pluginHost)
		if t == nil {
			break
		}
		var cs oteltrace.Span
		if st.span != nil {
			cs = st.startTry(&req.Header, m, attempt, lastErr)
		}
		m.Begin()
		t0 := time.Now()
		up, rest, err := handshake(t, req, st.extra, resp, t0.Add(svc.timeout), int(s.maxBody.Load()))
		d := time.Since(t0)
		waited += d
		if cs != nil {
			endTry(cs, err, resp.StatusCode())
		}
		if err != nil {
			m.End(false, d)
			exclude, lastErr = m, err
			// A handshake is a GET without a body: safe to send again,
			// unless the target may still be working on it (a timeout).
			if !s.tryFailed(svc, r, m, t, err) && transport.IsTimeout(err) {
				break
			}
			continue
		}
		lastErr = nil
		code := resp.StatusCode()
		m.End(targetServed(code), d)
		if svc.upstreamMs != nil {
			svc.upstreamMs.Update(d.Seconds())
		}
		upgraded := code == fasthttp.StatusSwitchingProtocols
		if upgraded && !hasToken(resp.Header.PeekBytes(hdrUpgrade), "websocket") {
			_ = up.Close()
			s.log.Warn("upstream switched to a protocol other than websocket", "route", r.name, "target", m.URL(),
				"upgrade", string(resp.Header.PeekBytes(hdrUpgrade)))
			resp.Reset()
			s.fail(c, r, fasthttp.StatusBadGateway, "upstream failed")
			break
		}
		st.takeAnswer(resp)
		if !upgraded {
			_ = up.Close() // refused: its answer, read whole, goes back as it is
			break
		}
		resp.Header.SetCanonical(hdrUpgrade, valWebSocket)
		resp.Header.SetCanonical(hdrConnection, valUpgrade)
		tun := s.ws.newTunnel(up, rest, r, s.log)
		reserved = false // the tunnel holds the place now
		if slot, ok := rc.UserValue(h2TunnelKey{}).(**tunnel); ok {
			*slot = tun // an HTTP/2 stream (h2ws.go): serveH2Stream runs it
		} else {
			rc.Hijack(tun.run)
		}
		break
	}
	if lastErr != nil {
		s.failUpstream(c, r, st, lastErr)
	}
	return waited
}

// handshakeReaders are the readers of upstreams' handshake answers, as
// large as the transport lets an answer's header be.
var handshakeReaders sync.Pool

// handshake dials t, sends the handshake (req's header, then extra, the
// forwarding fields) and reads the answer into resp, all before deadline.
// On success it returns the connection and a copy of what the upstream
// sent after its answer (the first frames, when it speaks at once).
func handshake(t *transport.Transport, req *fasthttp.Request, extra []byte, resp *fasthttp.Response,
	deadline time.Time, maxBody int) (net.Conn, []byte, error) {
	nc, err := t.Dial(deadline)
	if err != nil {
		return nil, nil, err
	}
	_ = nc.SetDeadline(deadline)
	hdr := req.Header.Header() // ends with the blank line
	out := make([]byte, 0, len(hdr)+len(extra))
	out = append(append(append(out, hdr[:len(hdr)-2]...), extra...), "\r\n"...)
	if _, err := nc.Write(out); err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	size := t.Config().MaxHeaderBytes
	br, _ := handshakeReaders.Get().(*bufio.Reader)
	if br == nil || br.Size() != size {
		br = bufio.NewReaderSize(nil, size)
	}
	br.Reset(nc)
	defer func() {
		br.Reset(nil)
		handshakeReaders.Put(br)
	}()
	if err := resp.ReadLimitBody(br, maxBody); err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	var rest []byte
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		rest = bytes.Clone(b)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, rest, nil
}
