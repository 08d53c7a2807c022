package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// HTTP/2 to upstreams (h2c://, grpc://, h2://, grpcs:// targets): the
// same Transport, whose requests go through the gateway's own HTTP/2
// client (h2client.go) instead of the HTTP/1.1 pool. It multiplexes
// streams over a few connections per target: each connection carries at
// most the streams the upstream's SETTINGS_MAX_CONCURRENT_STREAMS allows,
// and a new one is dialled when all are full. Responses of known, small
// size without trailers are buffered (response plugins can read them);
// the rest stream, and their trailers (gRPC's status) are kept for the
// client side (H2Body).

// ErrNotHTTP2: the target answered the HTTP/2 preface with something
// else, most likely HTTP/1.1 — a target URL with the wrong scheme.
var ErrNotHTTP2 = errors.New("upstream does not speak HTTP/2: the target's scheme is h2c://, grpc://, h2:// or grpcs:// but it answered like an HTTP/1.1 server")

type h2Client struct {
	scheme string // http or https: the :scheme sent
	pool   *h2Pool
}

// h2Pool is the transport's HTTP/2 connections (h2client.go): at most
// MaxConns of them (services[].max_conns_per_target), each carrying the
// streams the upstream's SETTINGS_MAX_CONCURRENT_STREAMS allows. A call
// takes a stream on the first connection with one free, else dials while
// under the cap, else waits for a stream to end, up to MaxConnWait
// (ErrPoolTimeout, a 503, as for HTTP/1.1).
type h2Pool struct {
	t       *Transport
	dial    func(ctx context.Context) (net.Conn, error)
	mu      sync.Mutex
	conns   []*upConn
	dialing int
	dialSeq uint64 // dials finished
	dialErr error  // the last one's error
	waiters atomic.Int64
	wmu     sync.Mutex    // guards wake
	wake    chan struct{} // closed (and replaced) by release
}

// get reserves a stream slot on a connection for a call that ends with
// parent or at its deadline dl.
func (p *h2Pool) get(parent <-chan struct{}, dl time.Time) (*upConn, error) {
	var timer, dlTimer *time.Timer
	clipped := false // the wait ends at the call's own deadline
	counted := false // in waiters: a release after the next look wakes it
	defer func() {
		if counted {
			p.waiters.Add(-1)
		}
	}()
	waitingDial := false // for a connection being dialled
	var seq uint64       // dials finished before it began
	for {
		if waitingDial {
			// Its failure is this call's too (a dial error, retried
			// elsewhere), not a wait for every caller to dial in turn.
			if err := p.dialFailedSince(seq); err != nil {
				return nil, err
			}
		}
		var wake chan struct{}
		if counted {
			wake = p.wakeChan()
		}
		c, dial, dialing, n := p.take()
		if c != nil {
			return c, nil
		}
		if dial {
			// Dialled apart from this call, bounded by the connect
			// timeout: a call with a short deadline does not fail the
			// connection the calls waiting with it need.
			go p.add()
			dialing = true
		}
		if dialing && !waitingDial {
			waitingDial, seq = true, n
		}
		if !counted {
			counted = true
			p.waiters.Add(1)
			continue // look again, counted
		}
		var expired, dlC <-chan time.Time
		if dialing && !dl.IsZero() {
			// The dial's own timeout bounds this wait, and the call's.
			if dlTimer == nil {
				dlTimer = time.NewTimer(time.Until(dl))
				defer dlTimer.Stop()
			}
			dlC = dlTimer.C
		}
		if !dialing {
			// Every connection is full: wait for a stream to end, up to
			// max_conn_wait.
			if timer == nil {
				wait := p.t.cfg.MaxConnWait
				if !dl.IsZero() && time.Until(dl) < wait {
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
			}
			expired = timer.C
		}
		select {
		case <-wake:
		case <-expired:
			if c, _, _, _ := p.take(); c != nil {
				return c, nil
			}
			if clipped {
				// The wait was cut to the call's own deadline: that
				// deadline is what ended it (a 504, DEADLINE_EXCEEDED),
				// not the pool.
				return nil, context.DeadlineExceeded
			}
			return nil, ErrPoolTimeout
		case <-dlC:
			return nil, context.DeadlineExceeded
		case <-parent:
			return nil, context.Canceled
		}
	}
}

// take reserves a stream on a live connection. With none free, dial says
// a new connection fits under the cap (counted as dialling from now; the
// caller dials it); dialing that one is being dialled, which the caller
// waits for rather than dialling another (its stream limit is not known
// yet). seq is the number of dials finished.
func (p *h2Pool) take() (c *upConn, dial, dialing bool, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if c.reserve() {
			return c, false, false, p.dialSeq
		}
	}
	if p.dialing > 0 {
		return nil, false, true, p.dialSeq
	}
	if len(p.conns) < p.t.cfg.MaxConns {
		p.dialing++
		return nil, true, false, p.dialSeq
	}
	return nil, false, false, p.dialSeq
}

// add dials a connection (counted as dialling by take), lists it and
// wakes the calls waiting for it.
func (p *h2Pool) add() {
	ctx, cancel := context.WithTimeout(context.Background(), p.t.cfg.ConnectTimeout)
	nc, err := p.dial(ctx)
	cancel()
	var c *upConn
	if err == nil {
		c, err = newUpConn(p, nc)
	}
	p.mu.Lock()
	p.dialing--
	p.dialSeq++
	p.dialErr = err
	if err == nil {
		p.conns = append(p.conns, c)
	}
	p.mu.Unlock()
	p.release()
}

// dialFailedSince is the error of the last dial when it failed after
// dial number seq.
func (p *h2Pool) dialFailedSince(seq uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dialSeq != seq {
		return p.dialErr
	}
	return nil
}

// wakeChan is closed by the next release.
func (p *h2Pool) wakeChan() chan struct{} {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.wake
}

// release wakes the waiters, if any: a stream slot may have freed, or a
// connection was listed or unlisted.
func (p *h2Pool) release() {
	if p.waiters.Load() > 0 {
		p.wmu.Lock()
		close(p.wake)
		p.wake = make(chan struct{})
		p.wmu.Unlock()
	}
}

// drop unlists a connection that takes no new streams.
func (p *h2Pool) drop(c *upConn) {
	p.mu.Lock()
	for i, x := range p.conns {
		if x == c {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	p.release() // a connection fits under the cap again
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
	for _, c := range list {
		c.drain()
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
	h.pool = &h2Pool{t: t, wake: make(chan struct{})}
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

// replayMax bounds the streamed request body kept for sending again on
// another connection when the upstream refused the stream unprocessed
// (GOAWAY, REFUSED_STREAM); a longer one is not retried.
const replayMax = 64 << 10

// h2Retries bounds how often a refused stream is sent again.
const h2Retries = 3

// clientBody is a streamed request body on its way up. It remembers a
// failure of the client's body, which is the client's fault, not the
// target's, and keeps what it read (up to replayMax) for a retry.
type clientBody struct {
	r    io.Reader
	kept []byte
	over bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if !b.over {
		if len(b.kept)+n > replayMax {
			b.over, b.kept = true, nil
		} else {
			b.kept = append(b.kept, p[:n]...)
		}
	}
	if err != nil && err != io.EOF {
		err = &ClientBodyError{Err: err}
	}
	return n, err
}

// fieldBufs hold a call's header block (hpack.go) until it is sent.
var fieldBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

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
	fb := fieldBufs.Get().(*[]byte)
	defer fieldBufs.Put(fb)
	f := appendHPACKRequest((*fb)[:0], req.Header.Method(), []byte(t.h2.scheme), req.Header.Host(), req.RequestURI())
	grpc := false
	for k, v := range req.Header.All() {
		if requestHeaderSkip(k) {
			continue
		}
		f = AppendHPACKField(f, k, v)
		if len(k) == 12 && bytes.EqualFold(k, []byte("Content-Type")) && bytes.HasPrefix(v, []byte("application/grpc")) {
			grpc = true
		}
	}
	for len(extra) > 0 {
		line, rest, _ := bytes.Cut(extra, []byte("\r\n"))
		extra = rest
		if k, v, ok := bytes.Cut(line, []byte(": ")); ok {
			f = AppendHPACKField(f, k, v)
		}
	}
	if grpc {
		f = AppendHPACKField(f, []byte("te"), []byte("trailers")) // gRPC servers ask for it
	}
	r := upRequest{}
	var cb *clientBody
	var num [20]byte
	if req.IsBodyStream() {
		cb = &clientBody{r: req.BodyStream()}
		r.stream, r.hasStream = cb, true
		if cl := req.Header.ContentLength(); cl >= 0 {
			f = AppendHPACKField(f, []byte("content-length"), strconv.AppendInt(num[:0], int64(cl), 10))
		}
	} else if b := req.Body(); len(b) > 0 {
		r.body = b
		f = AppendHPACKField(f, []byte("content-length"), strconv.AppendInt(num[:0], int64(len(b)), 10))
	}
	r.block = f
	*fb = f
	s, err := t.sendH2(parent, deadline, &r, cb)
	if err != nil {
		timedOut := !time.Now().Before(deadline) || errors.Is(err, context.DeadlineExceeded)
		var ce *ClientBodyError
		if errors.As(err, &ce) {
			return ce
		}
		if parent.Err() != nil {
			// The client ended its stream: its doing, not the target's.
			return &ClientBodyError{Err: parent.Err()}
		}
		if timedOut || err == errStreamCancelled {
			return errH2Timeout
		}
		return err
	}
	resp.SetStatusCode(s.status)
	cl, trailers := -1, false
	for _, hf := range s.header {
		switch hf.Name {
		case "content-type":
			resp.Header.SetContentType(hf.Value)
			continue
		case "content-length":
			if n, err := strconv.Atoi(hf.Value); err == nil && n >= 0 {
				cl = n
			}
			continue
		case "trailer":
			trailers = true
			continue
		}
		resp.Header.Add(hf.Name, hf.Value)
	}
	body := &H2Body{s: s}
	if cl >= 0 && cl <= t.cfg.StreamThreshold && !trailers && !grpc {
		// Small and whole: buffered, as the HTTP/1.1 transport does.
		buf := getUpBuf()
		var err error
		for err == nil {
			var n int
			n, err = body.Read(*buf)
			resp.AppendBody((*buf)[:n])
		}
		putUpBuf(buf)
		body.Close()
		if err != io.EOF {
			return err
		}
		return nil
	}
	// Not pooled: the client side reads Trailer after the body was
	// written, and closed, by fasthttp.
	resp.SetBodyStream(body, cl)
	return nil
}

// sendH2 sends the request on a stream and waits for its answer's
// header block; a stream the upstream refused unprocessed is sent again
// on another connection when its body can be.
func (t *Transport) sendH2(parent context.Context, dl time.Time, r *upRequest, cb *clientBody) (*upStream, error) {
	for try := 0; ; try++ {
		c, err := t.h2.pool.get(parent.Done(), dl)
		if err != nil {
			return nil, err
		}
		rest := r.body
		s, err := c.open(r, parent.Done(), dl)
		if err == errRefused && try < h2Retries {
			r.body = rest
			continue
		}
		if err != nil {
			return nil, err
		}
		var sent chan struct{}
		if r.hasStream || len(r.body) > 0 {
			sent = make(chan struct{})
			go func(body []byte, stream io.Reader) {
				defer close(sent)
				_ = s.sendBody(body, stream)
			}(r.body, r.stream)
		} else {
			s.reuse = true
		}
		err = s.awaitHead()
		if err != errRefused || try >= h2Retries {
			return s, err
		}
		r.body = rest
		if cb != nil {
			// Sent again: what was read, then the rest, once the
			// refused stream's sender has stopped reading.
			tmr := time.NewTimer(time.Until(dl))
			select {
			case <-sent:
				tmr.Stop()
			case <-tmr.C:
				return nil, context.DeadlineExceeded
			case <-parent.Done():
				tmr.Stop()
				return nil, parent.Err()
			}
			if cb.over {
				return nil, err
			}
			cb = &clientBody{r: io.MultiReader(bytes.NewReader(cb.kept), cb.r)}
			r.stream = cb
		}
	}
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
	s       *upStream
	trailer http.Header
	err     error
	closed  bool
}

func (b *H2Body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errConnGone
	}
	n, err := b.s.read(p)
	switch {
	case err == io.EOF:
		b.trailer = b.s.trailer
	case err != nil:
		b.err = err
	}
	return n, err
}

// Close ends the upstream stream (a reset if it was not read to its
// end) and gives it back for another call, unless a goroutine sending
// a streamed request body still holds it.
func (b *H2Body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.s.finish()
	if b.s.reuse {
		putStream(b.s)
	}
	return nil
}

// Move returns a body that owns the upstream stream, for a wrapper that
// takes b's place (gRPC-Web): closing b no longer ends the stream.
func (b *H2Body) Move() *H2Body {
	nb := *b
	b.closed = true
	return &nb
}

// Trailer is the upstream's trailers, once the body was read to its end.
func (b *H2Body) Trailer() http.Header { return b.trailer }

// Err is how reading the body failed (nil: it ended cleanly); a timeout
// is a net.Error whose Timeout is true.
func (b *H2Body) Err() error { return b.err }
