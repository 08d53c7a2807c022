//lint:file-ignore SA1019 x/net/http2 is deprecated in favour of net/http, which cannot serve one connection handed over by fasthttp (ServeConn) nor take Upgrade: h2c (RATIONALE.md)

package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/coalesce"
	"golang.org/x/net/http2"
)

// HTTP/2 to upstreams (h2c://, grpc://, h2://, grpcs:// targets): the
// same Transport, whose requests go through golang.org/x/net/http2's
// client instead of the HTTP/1.1 pool. It multiplexes streams over a few
// connections per target: each connection carries at most the streams the
// upstream's SETTINGS_MAX_CONCURRENT_STREAMS allows, and a new one is
// dialled when all are full. Responses of known, small size without
// trailers are buffered (response plugins can read them); the rest stream,
// and their trailers (gRPC's status) are kept for the client side
// (H2Body).

// ErrNotHTTP2: the target answered the HTTP/2 preface with something
// else, most likely HTTP/1.1 — a target URL with the wrong scheme.
var ErrNotHTTP2 = errors.New("upstream does not speak HTTP/2: the target's scheme is h2c://, grpc://, h2:// or grpcs:// but it answered like an HTTP/1.1 server")

type h2Client struct {
	tr     *http2.Transport
	scheme string // http or https, for the request URL
	pool   *h2Pool
}

// h2Pool is the transport's HTTP/2 connections (x/net's ClientConnPool):
// at most MaxConns of them (services[].max_conns_per_target), each
// carrying the streams the upstream's SETTINGS_MAX_CONCURRENT_STREAMS
// allows (x/net's own ceiling is 1000). A call takes a stream on the
// first connection with one free, else dials while under the cap, else
// waits for a stream to end, up to MaxConnWait (ErrPoolTimeout, a 503,
// as for HTTP/1.1).
type h2Pool struct {
	t       *Transport
	dial    func(ctx context.Context) (net.Conn, error)
	mu      sync.Mutex
	conns   []*http2.ClientConn
	dialing int
	waiters atomic.Int64
	freed   chan struct{}
}

func (p *h2Pool) GetClientConn(req *http.Request, _ string) (*http2.ClientConn, error) {
	var timer *time.Timer
	clipped := false // the wait ends at the call's own deadline
	for {
		cc, dial := p.take()
		if cc != nil {
			return cc, nil
		}
		if dial {
			cc, err := p.add(req.Context())
			if err != nil {
				return nil, err
			}
			if cc.ReserveNewRequest() {
				return cc, nil
			}
			continue
		}
		if timer == nil {
			wait := p.t.cfg.MaxConnWait
			if dl, ok := req.Context().Deadline(); ok && time.Until(dl) < wait {
				wait, clipped = time.Until(dl), true
			}
			if wait <= 0 {
				if clipped {
					return nil, context.DeadlineExceeded
				}
				return nil, ErrPoolTimeout
			}
			timer = time.NewTimer(wait)
			defer timer.Stop()
			p.waiters.Add(1)
			defer p.waiters.Add(-1)
			continue // counted as waiting before the last look (see release)
		}
		// A stream's end signals; the short tick covers the moment
		// between the signal and x/net freeing the stream's slot.
		tick := time.NewTimer(5 * time.Millisecond)
		select {
		case <-p.freed:
		case <-tick.C:
		case <-timer.C:
			tick.Stop()
			if cc, _ := p.take(); cc != nil {
				return cc, nil
			}
			if clipped {
				// The wait was cut to the call's own deadline: that
				// deadline is what ended it (a 504, DEADLINE_EXCEEDED),
				// not the pool.
				return nil, context.DeadlineExceeded
			}
			return nil, ErrPoolTimeout
		case <-req.Context().Done():
			tick.Stop()
			return nil, req.Context().Err()
		}
		tick.Stop()
	}
}

// take reserves a stream on a live connection; with none free, dial says
// whether a new connection fits under the cap (and is counted as dialling).
func (p *h2Pool) take() (cc *http2.ClientConn, dial bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := p.conns[:0]
	for _, c := range p.conns {
		// Full ones stay (CanTakeNewRequest is false for them too).
		if st := c.State(); !st.Closed && !st.Closing {
			live = append(live, c)
		}
	}
	clear(p.conns[len(live):])
	p.conns = live
	for _, c := range p.conns {
		if c.ReserveNewRequest() {
			return c, false
		}
	}
	if len(p.conns)+p.dialing < p.t.cfg.MaxConns {
		p.dialing++
		return nil, true
	}
	return nil, false
}

// add dials a connection (counted as dialling by take) and lists it.
func (p *h2Pool) add(ctx context.Context) (*http2.ClientConn, error) {
	nc, err := p.dial(ctx)
	var cc *http2.ClientConn
	if err == nil {
		// The flushes of streams sent at once go out together
		// (package coalesce).
		if cc, err = p.t.h2.tr.NewClientConn(coalesce.New(nc, 0)); err != nil {
			nc.Close()
		}
	}
	p.mu.Lock()
	p.dialing--
	if err == nil {
		p.conns = append(p.conns, cc)
	}
	p.mu.Unlock()
	return cc, err
}

// release wakes a waiter, if any, when a stream ended.
func (p *h2Pool) release() {
	if p.waiters.Load() > 0 {
		select {
		case p.freed <- struct{}{}:
		default:
		}
	}
}

func (p *h2Pool) MarkDead(cc *http2.ClientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.conns {
		if c == cc {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			return
		}
	}
}

// open is the number of listed connections.
func (p *h2Pool) open() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.conns))
}

// closeIdle closes the idle connections; busy ones close when their
// streams end.
func (p *h2Pool) closeIdle() {
	p.mu.Lock()
	list := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, cc := range list {
		if cc.State().StreamsActive == 0 {
			_ = cc.Close()
		} else {
			go func() { _ = cc.Shutdown(context.Background()) }()
		}
	}
}

func (t *Transport) initH2() {
	h := &h2Client{scheme: "http"}
	tlsCfg := t.tlsCfg
	if tlsCfg != nil {
		h.scheme = "https"
		tlsCfg = tlsCfg.Clone()
		tlsCfg.NextProtos = []string{http2.NextProtoTLS}
	}
	addr := t.cfg.Addr
	h.pool = &h2Pool{t: t, freed: make(chan struct{}, 1)}
	h.tr = &http2.Transport{
		AllowHTTP: tlsCfg == nil,
		// Not StrictMaxConcurrentStreams: then a full connection would
		// still take a reservation, and the pool could not tell it is
		// full.
		ConnPool: h.pool,
	}
	h.pool.dial = func(ctx context.Context) (net.Conn, error) {
		nc, err := t.dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, &DialError{Err: err}
		}
		if tlsCfg == nil {
			return nc, nil
		}
		tc := tls.Client(nc, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, &DialError{Err: err, Handshake: true}
		}
		if tc.ConnectionState().NegotiatedProtocol != http2.NextProtoTLS {
			tc.Close()
			return nil, &DialError{Err: ErrNotHTTP2, Handshake: true}
		}
		return tc, nil
	}
	h.tr.MaxHeaderListSize = uint32(t.cfg.MaxHeaderBytes)
	h.tr.IdleConnTimeout = t.cfg.IdleTimeout
	// A connection silent this long is pinged; one that does not answer
	// is closed, so streams fail over instead of hanging.
	h.tr.ReadIdleTimeout = 30 * time.Second
	h.tr.PingTimeout = 5 * time.Second
	t.h2 = h
}

// close closes the idle HTTP/2 connections; busy ones close when their
// streams end.
func (h *h2Client) close() { h.pool.closeIdle() }

// HTTP2 reports whether the transport speaks HTTP/2 to its target.
func (t *Transport) HTTP2() bool { return t.h2 != nil }

// requestHeaderSkip: fields HTTP/2 does not carry or that the request
// carries elsewhere (RFC 9113 §8.2.2).
func requestHeaderSkip(k []byte) bool {
	for _, s := range [...]string{"Host", "Connection", "Content-Length", "Transfer-Encoding", "Te",
		"Keep-Alive", "Upgrade", "Proxy-Connection", "Http2-Settings"} {
		if len(k) == len(s) && bytes.EqualFold(k, []byte(s)) {
			return true
		}
	}
	return false
}

// clientBody remembers a failure of the client's body, which is the
// client's fault, not the target's. x/net reads it from its own
// goroutine while the call's goroutine looks at err.
type clientBody struct {
	r   io.Reader
	err atomic.Pointer[error]
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (b *clientBody) Close() error { return nil }

// DoContext is DoWithHeaders bound to ctx as well: an HTTP/2 target's
// call ends when ctx does (the client reset its stream, or went away),
// and the target sees it cancelled. An HTTP/1.1 target ignores ctx.
func (t *Transport) DoContext(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, extra []byte, deadline time.Time) error {
	if t.h2 == nil {
		return t.DoWithHeaders(req, resp, extra, deadline)
	}
	t.inflight.Add(1)
	defer t.inflight.Add(-1)
	return t.doH2(ctx, req, resp, extra, deadline)
}

func (t *Transport) doH2(parent context.Context, req *fasthttp.Request, resp *fasthttp.Response, extra []byte, deadline time.Time) error {
	u, err := url.ParseRequestURI(string(req.RequestURI()))
	if err != nil {
		return err
	}
	u.Scheme, u.Host = t.h2.scheme, t.cfg.Addr
	hr := &http.Request{
		Method: string(req.Header.Method()), URL: u, Host: string(req.Header.Host()),
		Proto: "HTTP/2.0", ProtoMajor: 2, Header: make(http.Header, 8),
	}
	grpc := false
	for k, v := range req.Header.All() {
		if requestHeaderSkip(k) {
			continue
		}
		hr.Header.Add(string(k), string(v))
		if len(k) == 12 && bytes.EqualFold(k, []byte("Content-Type")) && bytes.HasPrefix(v, []byte("application/grpc")) {
			grpc = true
		}
	}
	for len(extra) > 0 {
		line, rest, _ := bytes.Cut(extra, []byte("\r\n"))
		extra = rest
		if k, v, ok := bytes.Cut(line, []byte(": ")); ok {
			hr.Header.Add(string(k), string(v))
		}
	}
	if grpc {
		hr.Header.Set("Te", "trailers") // gRPC servers ask for it
	}
	var cb *clientBody
	if req.IsBodyStream() {
		cb = &clientBody{r: req.BodyStream()}
		hr.Body = cb
		hr.ContentLength = int64(req.Header.ContentLength())
		if hr.ContentLength < 0 {
			hr.ContentLength = -1
		}
	} else if b := req.Body(); len(b) > 0 {
		hr.Body = io.NopCloser(bytes.NewReader(b))
		hr.ContentLength = int64(len(b))
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	hr = hr.WithContext(ctx)
	hresp, err := t.h2.tr.RoundTrip(hr)
	if err != nil {
		t.h2.pool.release()
		timedOut := ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded)
		cancel()
		if cb != nil {
			if e := cb.err.Load(); e != nil {
				return &ClientBodyError{Err: *e}
			}
		}
		if parent.Err() != nil {
			// The client ended its stream: its doing, not the target's.
			return &ClientBodyError{Err: parent.Err()}
		}
		if timedOut {
			return errH2Timeout
		}
		var de *DialError
		if !errors.As(err, &de) && strings.Contains(err.Error(), "looked like an HTTP/1.1 header") {
			return ErrNotHTTP2
		}
		return err
	}
	resp.SetStatusCode(hresp.StatusCode)
	for k, vs := range hresp.Header {
		switch k {
		case "Content-Type":
			resp.Header.SetContentType(vs[0])
			continue
		case "Content-Length", "Trailer":
			continue
		}
		for _, v := range vs {
			resp.Header.Add(k, v)
		}
	}
	cl := hresp.ContentLength
	if cl >= 0 && cl <= int64(t.cfg.StreamThreshold) && len(hresp.Trailer) == 0 && !grpc {
		// Small and whole: buffered, as the HTTP/1.1 transport does.
		_, err := io.Copy(resp.BodyWriter(), io.LimitReader(hresp.Body, cl))
		hresp.Body.Close()
		t.h2.pool.release()
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if err != nil {
			if timedOut {
				return errH2Timeout
			}
			return err
		}
		return nil
	}
	// Not pooled: the client side reads Trailer after the body was
	// written, and closed, by fasthttp.
	resp.SetBodyStream(&H2Body{r: hresp.Body, resp: hresp, cancel: cancel, ctx: ctx, pool: t.h2.pool}, int(cl))
	return nil
}

// errH2Timeout: the upstream call ran past its deadline.
var errH2Timeout = &timeoutError{}

type timeoutError struct{}

func (*timeoutError) Error() string   { return "upstream HTTP/2 call timed out" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }

// H2Body is the streamed body of an HTTP/2 upstream's answer. Once read to
// its end, Trailer holds the upstream's trailers.
type H2Body struct {
	r      io.ReadCloser
	resp   *http.Response
	cancel context.CancelFunc
	ctx    context.Context
	err    error
	closed bool
	pool   *h2Pool // told when the stream ends
}

func (b *H2Body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		if b.ctx.Err() == context.DeadlineExceeded {
			err = errH2Timeout
		}
		b.err = err
	}
	return n, err
}

// Close ends the upstream stream (a reset if it was not read to its end).
func (b *H2Body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.r.Close()
	b.cancel()
	b.pool.release()
	return err
}

// Move returns a body that owns the upstream stream, for a wrapper that
// takes b's place (gRPC-Web): closing b no longer ends the stream.
func (b *H2Body) Move() *H2Body {
	nb := *b
	b.closed = true
	return &nb
}

// Declared is the trailer names the upstream announced.
func (b *H2Body) Declared() []string {
	var out []string
	for k := range b.resp.Trailer {
		out = append(out, k)
	}
	return out
}

// Trailer is the upstream's trailers, complete after the body's end.
func (b *H2Body) Trailer() http.Header { return b.resp.Trailer }

// Err is how reading the body failed (nil: it ended cleanly); a timeout
// is a net.Error whose Timeout is true.
func (b *H2Body) Err() error { return b.err }
