package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/weirgw/weir/internal/fusedio"
	"github.com/weirgw/weir/internal/httpsyntax"
	"github.com/weirgw/weir/pool"
	"github.com/weirgw/weir/proxy/router"
	"github.com/weirgw/weir/proxy/transport"
	"github.com/weirgw/weir/sdk"
)

// handshakeWarnEvery is how often a target whose TLS handshakes fail is
// logged at warn (every failure is logged at debug).
const handshakeWarnEvery = 10 * time.Second

// reqState is the per-request scratch of the handler, pooled inside the
// fasthttp RequestCtx's lifetime through a sync.Pool.
type reqState struct {
	host   []byte
	sent   []byte // the Host field as the client sent it (see forward)
	buf    []byte
	upPath []byte
	tmp    []byte
	limit  *sdk.LimitedBody // server.max_body_bytes on a streamed chunked body (streamedBody)
	body   []byte           // a buffered request body (readBody)
	// respBody is the buffer an upstream body is read into for a route's
	// WholeBodyFilter (bufferAnswer).
	respBody []byte
	hdr      []byte        // addDate's scratch header block
	hdrR     bytes.Reader  // reads hdr
	hdrBR    *bufio.Reader // over hdrR, allocated once per pooled state
	scan     fieldScan     // the request's (then the answer's) header fields
	dated    bool          // the upstream's answer carries a Date
	extra    []byte        // header lines the transport adds (setForwarding)
	// lent holds the upstream's answer body when the transport read it
	// into a buffer the client connection gives back (DoLending).
	lent *[]byte

	// Tracing (tracing.go): tr and span are set while a recorded request
	// runs; unsampled says a traceparent started here goes out unsampled.
	tr         *tracing
	span       oteltrace.Span
	traceCtx   context.Context
	spanFailed bool   // the span's error status is set
	tp         []byte // a traceparent being written (not tmp: hashKey's key lives there through the tries)
	unsampled  bool
	target     string      // the upstream target of the last try, for the access log
	grpcWeb    grpcWebMode // a gRPC-Web call forwardH2 made gRPC (grpcweb.go)
	alog       *accessLog  // the snapshot's access log, nil when off
}

// setForwarding sets a field the gateway adds to every forwarded request.
// When the request has none, the field goes into the raw lines the
// transport writes after the header (transport.DoWithHeaders): no search
// of the field list, no copy into it, nothing to serialize again on a
// retry. When it has one, fasthttp's Set replaces it. A value that is not
// the gateway's own (the client's Host) is checked for CR and LF, which
// fasthttp's parser does not let into values but a plugin could; such a
// value goes through Set, which sanitizes.
func (st *reqState) setForwarding(h *fasthttp.RequestHeader, present bool, name, value []byte, foreign bool) {
	if present || foreign && bytes.ContainsAny(value, "\r\n") {
		h.SetCanonical(name, value)
		return
	}
	st.extra = append(append(append(append(st.extra, name...), ": "...), value...), "\r\n"...)
}

// Names and values the proxy sets on every request, in canonical form
// (SetCanonical skips normalizing the name).
var (
	hdrRequestID      = []byte("X-Request-Id")
	hdrForwardedFor   = []byte("X-Forwarded-For")
	hdrForwardedProto = []byte("X-Forwarded-Proto")
	hdrForwardedHost  = []byte("X-Forwarded-Host")
	hdrTraceparent    = []byte("Traceparent")
	valHTTP           = []byte("http")
	valHTTPS          = []byte("https")
)

// handle is the fasthttp handler: one snapshot Load, route, filters,
// forward, response filters, metrics.
func (s *Server) handle(rc *fasthttp.RequestCtx) {
	snap := s.acquireSnapshot()
	st := s.statePool.Get().(*reqState)
	st.limit = nil
	st.dated = false
	st.unsampled = false
	st.target = ""
	st.grpcWeb = 0
	st.alog = snap.alog
	c := sdk.AcquireCtx(rc)
	s.serve(snap, st, c, rc)
	if rc.Response.StatusCode() != fasthttp.StatusOK && !rc.Hijacked() {
		// After the log and metrics, which keep the answer's status.
		grpcWebAnswer(rc, st.grpcWeb)
	}
	if st.span != nil {
		st.traceEnd(c)
	}
	if s.drain.draining.Load() && !rc.Hijacked() {
		// A stopping server answers and asks the client to reconnect,
		// which reaches the process that took over the address.
		rc.SetConnectionClose()
	}
	if !rc.Hijacked() { // a WebSocket's 101 goes out before its tunnel starts
		fusedio.HoldAnswer(rc)
	}
	if st.lent != nil {
		fusedio.LendAnswer(rc, st.lent)
		st.lent = nil
	}
	sdk.ReleaseCtx(c)
	s.statePool.Put(st)
	snap.refs.Add(-1)
}

// serve takes the request from its header to the answer. Its frame is
// on the stack for the whole upstream exchange, so it keeps little:
// admit (checks, routing, the body) runs and returns before the upstream
// is asked, and its larger frame is gone by then. A busy connection's
// goroutine then stays within a 4 KiB stack (e2e TestBusyConnectionStack).
func (s *Server) serve(snap *Snapshot, st *reqState, c *sdk.Ctx, rc *fasthttp.RequestCtx) {
	r, ws := s.admit(snap, st, c, rc)
	if r == nil {
		return
	}
	ran, stopped := s.runRequestFilters(c, r)
	var upstreamDur time.Duration
	if !stopped {
		if cons := c.Consumer(); cons != nil {
			setConsumerHeaders(&rc.Request.Header, cons)
		}
		switch {
		case r.agg != nil:
			upstreamDur = s.aggregate(c, r, snap)
		case ws:
			upstreamDur = s.upgrade(c, r, st)
		default:
			upstreamDur = s.forward(c, r, st)
		}
	}
	if r.hasResp {
		if r.wholeBody && !stopped {
			s.bufferAnswer(c, r, st)
		}
		s.runResponseFilters(c, r, ran)
	}
	s.finish(c, r, upstreamDur, st)
}

// setConsumerHeaders tells the upstream who the request's consumer is.
func setConsumerHeaders(h *fasthttp.RequestHeader, cons *sdk.Consumer) {
	h.Set("X-Consumer-Name", cons.Name)
	if cons.GroupsHeader != "" {
		h.Set("X-Consumer-Groups", cons.GroupsHeader)
	}
}

// admit is serve up to the plugins: the request's checks, its route and
// its body. It returns the route and whether the request is a WebSocket
// handshake, or a nil route when the request was answered here (and
// finished).
//
//go:noinline
func (s *Server) admit(snap *Snapshot, st *reqState, c *sdk.Ctx, rc *fasthttp.RequestCtx) (r *route, ws bool) {
	req := &rc.Request
	st.scan.scan(req.Header.All())
	if t := s.tracer.Load(); t != nil {
		st.traceStart(t, c)
	}
	// Request ID: the client's if it is sane, else a new one.
	if id := st.scan.requestID; validRequestID(id) {
		c.SetRequestID(id)
	} else {
		p := c.RequestIDBuf()
		*p = appendRequestID((*p)[:0])
		req.Header.SetCanonical(hdrRequestID, *p)
	}
	if needsWireCheck(&req.Header, &st.scan) {
		if bad := s.checkWire(&req.Header, &st.scan); bad != nil {
			s.fail(c, nil, bad.status, bad.msg)
			if bad.close {
				rc.SetConnectionClose()
			}
			s.finish(c, nil, 0, st)
			return nil, false
		}
	}

	if st.scan.flags&hasHopByHop != 0 && s.h2.h2c.Load() != nil && s.tryH2CUpgrade(rc) {
		return nil, false // Upgrade: h2c; the request is stream 1 of HTTP/2 now
	}

	// One interpretation of the path for the router, the plugins and the
	// upstream: fasthttp's normalized path (percent-decoded, dot segments
	// and duplicate slashes removed).
	path := req.URI().Path()
	if !httpsyntax.ValidPath(path) {
		s.fail(c, nil, fasthttp.StatusBadRequest, "invalid request path")
		s.finish(c, nil, 0, st)
		return nil, false
	}
	c.SetPath(path)
	path = c.Path()
	st.host = router.NormalizeHost(st.host[:0], rc.Host())
	c.SetHost(rc.Host())
	st.sent = append(st.sent[:0], req.Header.Host()...)

	r, strip := s.route(snap, st, c, rc, path)
	if r == nil {
		return nil, false
	}
	if r.stripPath {
		up := path[strip:]
		if len(up) == 0 || up[0] != '/' {
			st.upPath = append(append(st.upPath[:0], '/'), up...)
			c.SetUpstreamPath(st.upPath)
		} else {
			c.SetUpstreamPath(up)
		}
	}
	// Identity headers are the gateway's to set: drop client copies first
	// (checkWire dropped their underscore twins).
	if st.scan.flags&hasProtected != 0 {
		for _, h := range protectedRequestHeaders {
			req.Header.Del(h)
		}
	}
	// Body size limit, before anything reads the body.
	if cl := req.Header.ContentLength(); cl > 0 && int64(cl) > s.maxBody.Load() {
		s.fail(c, r, fasthttp.StatusRequestEntityTooLarge, "request body too large")
		rc.SetConnectionClose()
		s.finish(c, r, 0, st)
		return nil, false
	}

	// Buffered or streamed: decided once, before any filter looks (body.go).
	if !s.readBody(c, r, st) {
		s.finish(c, r, 0, st)
		return nil, false
	}

	// A WebSocket handshake (websocket.go) is checked before the plugins
	// run: a malformed one is the client's error, worth neither a rate
	// limit token nor an upstream's time.
	ws = st.scan.flags&hasUpgrade != 0 && r.agg == nil && isWebSocket(&req.Header)
	if ws && !checkHandshake(c) {
		s.finish(c, r, 0, st)
		return nil, false
	}
	return r, ws
}

// matchPool holds the router's per-match state (router.Match, 1.5 KiB,
// mostly the router's scratch), borrowed for routing only: a request that
// then waits for an upstream token or answer keeps none of it. Pooled
// rather than on route's stack, which would double a busy connection's
// goroutine stack to 8 KiB.
var matchPool = sync.Pool{New: func() any { return new(router.Match) }}

// route finds the request's route and gives the context its path
// parameters. It returns the route and how many leading bytes of path the
// pattern consumed (strip_path), or a nil route when the request was
// answered here (404, 405) and finished.
//
//go:noinline
func (s *Server) route(snap *Snapshot, st *reqState, c *sdk.Ctx, rc *fasthttp.RequestCtx, path []byte) (*route, int) {
	req := &rc.Request
	m := matchPool.Get().(*router.Match)
	defer matchPool.Put(m)
	res := snap.router.Match(st.host, req.Header.Method(), path, &req.Header, m)
	if res == router.MethodNotAllowed && req.Header.IsOptions() {
		// A CORS preflight asks with OPTIONS about another method: route it
		// by the method it asks about, so the route's cors plugin answers.
		if am := req.Header.Peek("Access-Control-Request-Method"); len(am) > 0 && len(req.Header.Peek("Origin")) > 0 {
			res = snap.router.Match(st.host, am, path, &req.Header, m)
		}
	}
	switch res {
	case router.NotFound:
		s.fail(c, nil, fasthttp.StatusNotFound, "no route matched")
		s.noRoute.Inc()
		s.finish(c, nil, 0, st)
		return nil, 0
	case router.MethodNotAllowed:
		s.fail(c, nil, fasthttp.StatusMethodNotAllowed, "method not allowed")
		rc.Response.Header.SetBytesV("Allow", m.Allow) // copied: m goes back to the pool
		s.noMethod.Inc()
		s.finish(c, nil, 0, st)
		return nil, 0
	}
	r := snap.routes[m.Route]
	c.Route = r.name
	c.Consumers = snap.consumers
	if r.svc != nil {
		c.Service = r.svc.name
	}
	for i := 0; i < m.NParams; i++ {
		c.AddParam(m.Params[i].Name, m.Params[i].Value)
	}
	return r, m.StripLen
}

// bufferAnswer reads a streamed upstream body that ends within
// streamThreshold into memory for a route whose response filters read
// whole bodies (sdk.WholeBodyFilter); a longer one keeps streaming. An
// upstream that breaks its body off is a 502: nothing was sent yet.
func (s *Server) bufferAnswer(c *sdk.Ctx, r *route, st *reqState) {
	resp := c.Response()
	if !resp.IsBodyStream() {
		return
	}
	_, buf, err := transport.BufferBody(resp, streamThreshold, st.respBody)
	st.respBody = buf
	if err != nil {
		s.log.Warn("upstream body cut short", "route", r.name, "request_id", string(c.RequestID()), "error", err)
		s.fail(c, r, fasthttp.StatusBadGateway, "upstream answer cut short")
	}
}

// runRequestFilters runs the route's filters in order until one stops.
// It returns how many ran (those get the response phase) and whether the
// chain was stopped. A panicking or failing filter answers 500.
func (s *Server) runRequestFilters(c *sdk.Ctx, r *route) (ran int, stopped bool) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("plugin panicked", "route", r.name, "request_id", string(c.RequestID()),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			c.Fail(fasthttp.StatusInternalServerError, "internal error in plugin")
			c.MarkStopped()
			ran++
			stopped = true
		}
	}()
	for ran < len(r.filters) {
		f := r.filters[ran]
		ran++
		status, err := f.OnRequest(c)
		if err != nil {
			s.log.Error("plugin failed", "route", r.name, "request_id", string(c.RequestID()), "error", err)
			c.Fail(fasthttp.StatusInternalServerError, "internal error in plugin")
			c.MarkStopped()
			return ran, true
		}
		if status == sdk.Stop {
			c.MarkStopped()
			return ran, true
		}
	}
	return ran, false
}

// runResponseFilters runs the response phase of the filters that ran, in
// reverse order.
func (s *Server) runResponseFilters(c *sdk.Ctx, r *route, ran int) {
	i := ran - 1
	for i >= 0 {
		func() {
			defer func() {
				if p := recover(); p != nil {
					s.log.Error("plugin panicked in response phase", "route", r.name, "panic", fmt.Sprint(p))
					c.Fail(fasthttp.StatusInternalServerError, "internal error in plugin")
				}
			}()
			for ; i >= 0; i-- {
				if rf := r.respFilters[i]; rf != nil {
					if err := rf.OnResponse(c); err != nil {
						s.log.Error("plugin failed in response phase", "route", r.name, "error", err)
						c.Fail(fasthttp.StatusInternalServerError, "internal error in plugin")
					}
				}
			}
		}()
		i--
	}
}

// forward sends the request to the route's service in three phases:
// prepare the upstream request (prepareUpstream), try targets until one
// answers or no retry is allowed (tryTargets), and answer the client
// with the last try's failure when there is no upstream answer. It
// returns the time spent waiting on upstreams.
func (s *Server) forward(c *sdk.Ctx, r *route, st *reqState) time.Duration {
	if r.svc == nil {
		s.fail(c, r, fasthttp.StatusServiceUnavailable, "route has no service")
		return 0
	}
	pluginHost, clientClose := s.prepareUpstream(c, st)
	waited, lastErr := s.tryTargets(c, r, st, pluginHost)
	if lastErr != nil {
		s.failUpstream(c, r, st, lastErr)
	}
	if clientClose {
		c.RequestCtx().Request.Header.SetConnectionClose()
	}
	return waited
}

// tryTargets makes up to services[].retries+1 tries, each on a member
// other than the last one tried, and stops at the first answer, at a
// client body failure (answered here), or at a failure that is not safe
// to retry. It returns the time spent waiting on upstreams and the last
// try's failure, nil when an answer (the upstream's or the gateway's)
// is already in the response.
func (s *Server) tryTargets(c *sdk.Ctx, r *route, st *reqState, pluginHost bool) (waited time.Duration, lastErr error) {
	req := &c.RequestCtx().Request
	svc := r.svc
	hashKey := s.hashKey(c, svc, st)
	attempts := svc.retries + 1
	// Asked before the first try: writing a streamed body takes the stream
	// off the request, and a spent stream cannot be sent again.
	streamed := req.IsBodyStream()
	var exclude *pool.Member
	for attempt := 0; attempt < attempts; attempt++ {
		m, t := s.nextTarget(c, r, st, hashKey, exclude, lastErr == nil, pluginHost)
		if t == nil {
			break
		}
		d, err := s.sendTry(c, svc, st, m, t, attempt, lastErr)
		waited += d
		if err == nil {
			m.End(targetServed(c.RequestCtx().Response.StatusCode()), d)
			st.takeAnswer(&c.RequestCtx().Response)
			if svc.upstreamMs != nil {
				svc.upstreamMs.Update(d.Seconds())
			}
			return waited, nil
		}
		if s.clientBodyFailed(c, r, st, m, err) {
			return waited, nil
		}
		if errors.Is(err, transport.ErrPoolTimeout) {
			// The gateway's own queue ran out (every connection to m
			// busy for max_conn_wait): m was not asked, so this is load,
			// not m's failure, for passive health and the breaker.
			m.Abandon()
		} else {
			m.End(false, d)
		}
		exclude = m
		lastErr = err
		retryable := s.tryFailed(svc, r, m, t, err) ||
			(transport.IsIdempotent(req.Header.Method()) && !streamed && !transport.IsTimeout(err))
		if !retryable {
			break
		}
	}
	return waited, lastErr
}

// sendTry sends one try to member m over t and returns how long it took.
// prev is the failure of the try before it (nil on the first), for the
// try's trace span.
func (s *Server) sendTry(c *sdk.Ctx, svc *service, st *reqState, m *pool.Member, t *transport.Transport,
	attempt int, prev error) (time.Duration, error) {
	rc := c.RequestCtx()
	var cs oteltrace.Span
	if st.span != nil {
		cs = st.startTry(&rc.Request.Header, m, attempt, prev)
	}
	m.Begin()
	st.target = m.URL()
	// The request's start (read when its header arrived) plus the
	// monotonic time since: one clock read instead of time.Now's two.
	t0 := c.Start.Add(time.Since(c.Start))
	// services[].timeout bounds one try, until the whole response is
	// read (docs/config.md); a retry gets its own.
	var err error
	if t.HTTP2() {
		err = s.forwardH2(t, rc, st, t0, svc.timeout)
	} else {
		var lent **[]byte
		if fusedio.CanLend(rc) {
			lent = &st.lent
		}
		err = t.DoLending(&rc.Request, &rc.Response, st.extra, t0.Add(svc.timeout), lent)
	}
	d := time.Since(t0)
	if cs != nil {
		endTry(cs, err, rc.Response.StatusCode())
	}
	return d, err
}

// clientBodyFailed reports whether a try's failure was the client's
// body (too large, malformed, cut short, stalled), and answers it: 4xx,
// and the target, which did nothing wrong, is counted by neither
// passive health nor the breaker. The body is spent and the client's
// stream is at an unknown place: no retry, and its connection closes.
func (s *Server) clientBodyFailed(c *sdk.Ctx, r *route, st *reqState, m *pool.Member, err error) bool {
	var clientErr *transport.ClientBodyError
	exceeded := st.limit != nil && st.limit.Exceeded
	if !errors.As(err, &clientErr) && !exceeded {
		return false
	}
	m.Abandon()
	status, msg := fasthttp.StatusRequestEntityTooLarge, "request body too large"
	if !exceeded {
		status, msg = sdk.ClientBodyStatus(clientErr.Err)
	}
	s.fail(c, r, status, msg)
	c.RequestCtx().SetConnectionClose()
	s.log.Debug("client request body failed", "route", r.name, "target", m.URL(), "error", err)
	return true
}

// targetServed reports whether an upstream's answer shows the target
// serving: a gateway-class answer (502/503/504) means it could not; any
// other status, 500 included, is the application's.
func targetServed(code int) bool {
	return code != fasthttp.StatusBadGateway && code != fasthttp.StatusServiceUnavailable &&
		code != fasthttp.StatusGatewayTimeout
}

// nextTarget picks the member of r's service a try goes to, excluding
// the last one tried, and points Host at it unless the client's (or a
// plugin's) host is kept. With none left it returns nil, after answering
// 503 when noFailure (no try has failed yet); otherwise the client gets
// the failure of the try that was made (502, 504), not 503.
func (s *Server) nextTarget(c *sdk.Ctx, r *route, st *reqState, hashKey []byte, exclude *pool.Member,
	noFailure, pluginHost bool) (*pool.Member, *transport.Transport) {
	m, err := r.svc.p.Pick(hashKey, exclude)
	var t *transport.Transport
	if err == nil {
		t = r.svc.transport(m)
	}
	if t == nil {
		if noFailure {
			s.fail(c, r, fasthttp.StatusServiceUnavailable, "no healthy upstream target")
			st.traceFail("no healthy upstream target")
		}
		return nil, nil
	}
	if !r.preserveHost && !pluginHost {
		c.RequestCtx().Request.Header.SetHost(m.Host())
	}
	return m, t
}

// takeAnswer drops the hop-by-hop fields of an upstream's answer and
// notes whether it carries a Date.
func (st *reqState) takeAnswer(resp *fasthttp.Response) {
	sc := &st.scan
	sc.scan(resp.Header.All())
	if sc.flags&hasHopByHop != 0 {
		removeHopByHop(&resp.Header) // may name Date
	} else {
		st.dated = sc.dated
	}
	resp.Header.ResetConnectionClose()
}

// tryFailed logs a try that failed at the target and reports whether
// the failure left nothing sent (a connect error, no free connection),
// so that any request may be retried elsewhere.
func (s *Server) tryFailed(svc *service, r *route, m *pool.Member, t *transport.Transport, err error) bool {
	var dialErr *transport.DialError
	if errors.As(err, &dialErr) && dialErr.Handshake && t.WarnDue(handshakeWarnEvery) {
		// A refused handshake (certificate, name, client certificate)
		// is a setting to fix, not load: worth a warning, once per
		// target and interval so a busy route does not flood the log.
		s.log.Warn("upstream TLS handshake failed", "service", svc.name, "target", m.URL(), "error", dialErr.Err)
	}
	if errors.Is(err, transport.ErrNotHTTP2) && t.WarnDue(handshakeWarnEvery) {
		s.log.Warn("upstream does not speak HTTP/2", "service", svc.name, "target", m.URL(), "error", err)
	}
	s.log.Debug("upstream request failed", "route", r.name, "target", m.URL(), "error", err)
	return dialErr != nil || errors.Is(err, transport.ErrPoolTimeout)
}

// failUpstream answers the failure of the last try.
func (s *Server) failUpstream(c *sdk.Ctx, r *route, st *reqState, err error) {
	status, msg := fasthttp.StatusBadGateway, "upstream failed"
	switch {
	case transport.IsTimeout(err):
		status, msg = fasthttp.StatusGatewayTimeout, "upstream timed out"
	case errors.Is(err, transport.ErrPoolTimeout):
		status, msg = fasthttp.StatusServiceUnavailable, "upstream connection limit reached"
	}
	s.fail(c, r, status, msg)
	st.traceFail(msg)
}

// prepareUpstream turns the client's request into the upstream's: the
// request line, Host, no hop-by-hop fields, and the forwarding fields
// (X-Forwarded-*, traceparent) in st.extra or the header. It reports
// whether a plugin set Host, and whether the client asked to close its
// connection (the caller puts that back after the try).
func (s *Server) prepareUpstream(c *sdk.Ctx, st *reqState) (pluginHost, clientClose bool) {
	rc := c.RequestCtx()
	req := &rc.Request
	// The upstream request line: the normalized path, re-encoded, plus
	// the client's query string.
	uri := req.URI()
	st.buf = httpsyntax.AppendEscapedPath(st.buf[:0], c.UpstreamPath())
	// The raw query string travels as the client wrote it (re-encoding
	// could change its meaning for the upstream). A plugin that edits
	// QueryArgs writes them back with URI().SetQueryStringBytes.
	if q := uri.QueryString(); len(q) > 0 {
		st.buf = append(append(st.buf, '?'), q...)
	}
	// A Host field a plugin set (request_transformer, lua, a wasm guest's
	// :authority) is what goes upstream, whatever preserve_host says;
	// otherwise the upstream gets the client's host (preserve_host) or
	// the target's. X-Forwarded-Host stays the client's either way.
	clientHost := c.Host()
	pluginHost = !bytes.Equal(req.Header.Host(), st.sent)
	req.SetRequestURIBytes(st.buf)
	if !pluginHost {
		req.Header.SetHostBytes(clientHost)
	}

	// Hop-by-hop fields never travel; the client's Connection: close is
	// about its own connection, not ours.
	clientClose = req.Header.ConnectionClose()
	sc := &st.scan // plugins may have changed the header: look again
	sc.scan(req.Header.All())
	prior, trace := sc.xff, sc.trace
	if sc.flags&hasHopByHop != 0 {
		removeHopByHop(&req.Header)
		// Connection may have named either of them.
		prior, trace = req.Header.Peek("X-Forwarded-For"), req.Header.Peek("Traceparent")
	}
	req.Header.ResetConnectionClose()

	// X-Forwarded-*: append the peer to the chain (only a chain that came
	// through a trusted proxy, when server.trusted_proxies is set), say how
	// and to what host the client connected. They, and a traceparent we
	// start, are for the upstream only: plugins see the client's fields.
	st.extra = st.extra[:0]
	st.buf = s.appendForwardedFor(st.buf[:0], prior, c)
	st.setForwarding(&req.Header, sc.flags&hasXFF != 0, hdrForwardedFor, st.buf, false)
	st.setForwarding(&req.Header, sc.flags&hasXFP != 0, hdrForwardedProto, forwardedProto(rc), false)
	st.setForwarding(&req.Header, sc.flags&hasXFH != 0, hdrForwardedHost, clientHost, true)
	if st.span == nil && !validTraceparent(trace) {
		// A recorded request's traceparent is set per try (startTry).
		st.buf = appendTraceparent(st.buf[:0], !st.unsampled)
		st.setForwarding(&req.Header, sc.flags&hasTrace != 0, hdrTraceparent, st.buf, false)
	}
	return pluginHost, clientClose
}

func (svc *service) transport(m *pool.Member) *transport.Transport {
	return svc.trans[m.URL()]
}

func (s *Server) hashKey(c *sdk.Ctx, svc *service, st *reqState) []byte {
	switch svc.hash {
	case hashIP:
		st.tmp = appendClientIP(st.tmp[:0], c.RequestCtx())
		return st.tmp
	case hashConsumer:
		if cons := c.Consumer(); cons != nil {
			return append(st.tmp[:0], cons.Name...)
		}
		st.tmp = appendClientIP(st.tmp[:0], c.RequestCtx())
		return st.tmp
	case hashPath:
		return c.Path()
	case hashHeader:
		return c.Request().Header.Peek(svc.hashName)
	case hashCookie:
		return c.Request().Header.Cookie(svc.hashName)
	}
	return nil
}

// finish applies deferred headers and records metrics.
func (s *Server) finish(c *sdk.Ctx, r *route, upstream time.Duration, st *reqState) {
	rc := c.RequestCtx()
	c.ApplyResponseHeaders()
	rc.Response.Header.SetCanonical(hdrRequestID, c.RequestID())
	// An upstream's Date seen by forward's scan stands unless response
	// filters ran (they may have replaced the answer).
	if !(st.dated && (r == nil || !r.hasResp)) && len(rc.Response.Header.Peek("Date")) == 0 {
		// RFC 9110 §6.6.1: the gateway's own answers carry a Date; an
		// upstream's (or a cache entry's) is forwarded untouched.
		addDate(&rc.Response.Header, st)
	}
	total := time.Since(c.Start)
	if s.latencyHeaders.Load() {
		var b [24]byte
		rc.Response.Header.SetBytesV("X-Weir-Upstream-Latency", strconv.AppendInt(b[:0], upstream.Milliseconds(), 10))
		rc.Response.Header.SetBytesV("X-Weir-Proxy-Latency", strconv.AppendInt(b[:0], (total-upstream).Milliseconds(), 10))
	}
	if r == nil {
		if al := st.alog; al != nil && al.w != nil {
			al.logRequest(s, c, st, total, upstream)
		}
		return
	}
	for _, lf := range r.logFilters {
		lf.OnLog(c)
	}
	// After the log filters that run here, which may add fields.
	if al := st.alog; al != nil && al.w != nil && !r.noAccessLog {
		al.logRequest(s, c, st, total, upstream)
	}
	if len(r.deferredLog) != 0 {
		// Observers run later, on a copy, off the request's time
		// (logphase.go).
		s.deferLog(c, r)
	}
	r.m.count(rc.Response.StatusCode())
	if cons := c.Consumer(); cons != nil && s.consumers.on.Load() {
		s.consumers.count(cons.Name, rc.Response.StatusCode())
	}
	if r.m.duration != nil {
		r.m.duration.Update(total.Seconds())
		r.m.overhead.Update((total - upstream).Seconds())
	}
}

// fail writes a gateway error; r may be nil before routing.
func (s *Server) fail(c *sdk.Ctx, r *route, status int, msg string) {
	c.Fail(status, msg)
}

// isProtectedTwin reports whether k is a protected name with "_" for
// "-" (X_Consumer_Name): many upstream stacks (CGI, WSGI, some nginx
// setups) fold "_" into "-", so a client could smuggle a protected header
// past the exact-name removal.
func isProtectedTwin(k []byte) bool {
	for _, p := range protectedRequestHeaders {
		if len(p) != len(k) {
			continue
		}
		match := true
		for i := 0; i < len(k); i++ {
			a, b := k[i], p[i]
			if a == '_' {
				a = '-'
			}
			if a|0x20 != b|0x20 {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// peerTrusted reports whether the connection's peer may hand us an
// X-Forwarded-For chain: always when server.trusted_proxies is empty
// (the common "append" behaviour), else only from those networks.
func (s *Server) peerTrusted(c *sdk.Ctx) bool {
	nets := s.trusted.Load()
	if nets == nil || len(*nets) == 0 {
		return true
	}
	return inPrefixes(*nets, c.ClientIP())
}
