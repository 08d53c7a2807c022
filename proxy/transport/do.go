package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httputil"
	"slices"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/fusedio"
)

// ErrUpgrade is returned for a 101 answer: protocol upgrades are not
// proxied yet.
var ErrUpgrade = errors.New("upstream switched protocols; upgrades are not supported")

const maxInterim = 8

// errNoBody: the upstream closed (or failed) after its response header,
// before the first byte of the body it announced. Not io.EOF: the answer
// had begun, so this is no stale keep-alive connection to retry on.
var errNoBody = errors.New("upstream sent its response header but no body")

const deadlineSlack = 20 * time.Millisecond

var http11 = []byte("HTTP/1.1")

// Do writes req to the upstream and reads the response into resp.
//
// A small body (Content-Length up to StreamThreshold) is read whole and the
// connection goes straight back to the pool. Any other body is left on the
// connection and exposed as resp's body stream: the connection returns to
// the pool when the stream has been read to its end and closed (the
// fasthttp server closes it after writing the response), or is closed if
// the stream was abandoned. deadline bounds connecting, writing and reading
// the whole response.
//
// A reused keep-alive connection found closed or holding unsolicited bytes
// before the request went out (errStale) is replaced by a new one, whatever
// the method: nothing was sent. One that fails after the request was sent
// but before any byte of the response arrived (the upstream closed it as
// the request crossed) is retried once on a new connection when it is safe
// to: an idempotent method and a body that is not a stream.
func (t *Transport) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	return t.DoWithHeaders(req, resp, nil, deadline)
}

// DoWithHeaders is Do that also sends extra, raw header lines ("Name:
// value\r\n" each), after req's own fields. It is how the gateway adds the
// fields it sets on every request (X-Forwarded-*, traceparent) without
// fasthttp's Set, which searches, copies and sanitizes per field: the
// caller vouches that the names are absent from req and that the values
// hold no CR or LF.
func (t *Transport) DoWithHeaders(req *fasthttp.Request, resp *fasthttp.Response, extra []byte, deadline time.Time) error {
	return t.DoLending(req, resp, extra, deadline, nil)
}

// lendMin: bodies up to this many bytes stay in fasthttp's own pool,
// which serves the common small sizes well.
const lendMin = 4 << 10

// DoLending is DoWithHeaders that, over HTTP/1.1 and given lent, reads a
// body of more than lendMin and at most fusedio.MaxHeld bytes into a
// buffer borrowed from fusedio (the one in *lent, else a new one, left
// in *lent) and makes it resp's raw body. The caller hands *lent to the
// client connection the answer goes out on (fusedio.LendAnswer), which
// gives it back once the answer is written.
func (t *Transport) DoLending(req *fasthttp.Request, resp *fasthttp.Response, extra []byte, deadline time.Time, lent **[]byte) error {
	if t.h2 != nil {
		return t.doH2(context.Background(), req, resp, extra, deadline)
	}
	t.inflight.Add(1)
	defer t.inflight.Add(-1)
	// Asked before the first try: writing a streamed body takes the stream
	// off the request, and a spent stream must not be retried.
	streamed := req.IsBodyStream()
	for attempt := 0; ; attempt++ {
		// A retry dials afresh: the next pooled connection has most likely
		// gone stale the same way as the one that just failed.
		c, reused, err := t.acquire(deadline, attempt > 0)
		if err != nil {
			return err
		}
		err = t.roundTrip(c, req, resp, extra, deadline, reused, lent)
		if err == nil {
			return nil
		}
		if err = retryOnNew(err, req, deadline, attempt, reused, streamed); err != nil {
			return err
		}
	}
}

// retryOnNew says what becomes of a failed try of DoWithHeaders: nil
// when the request goes again on a new connection, else the error to
// return. Apart (and not inlined) to keep DoWithHeaders's frame, which
// is on the stack through every upstream exchange, small.
//
//go:noinline
func retryOnNew(err error, req *fasthttp.Request, deadline time.Time, attempt int, reused, streamed bool) error {
	if _, client := err.(*ClientBodyError); client {
		return err
	}
	if err == errStale && attempt == 0 {
		// Found closed or dirty before anything was sent: any request
		// may go again, on a new connection.
		return nil
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		// fasthttp wraps read errors in types that hide net.Error's
		// Timeout; the clock is the reliable witness.
		return ErrTimeout
	}
	var nothing fasthttp.ErrNothingRead
	staleConn := reused && (errors.As(err, &nothing) || errors.Is(err, io.EOF) || isConnReset(err))
	if staleConn && attempt == 0 && !streamed && IsIdempotent(req.Header.Method()) {
		return nil
	}
	return err
}

func (t *Transport) roundTrip(c *conn, req *fasthttp.Request, resp *fasthttp.Response, extra []byte, deadline time.Time, reused bool, lent **[]byte) error {
	// Deadlines are lazy (package fusedio): recorded here, handed to the
	// runtime only when an operation would block and the socket's is more
	// than deadlineSlack earlier.
	_ = c.fc.SetDeadline(deadline)
	// A request whose body is in memory is held and sent by the first read
	// of the answer, after a reused connection proved quiet, in one
	// RawConn.Read. A streamed body is written as it is read, so a reused
	// connection is checked before any of it is consumed.
	if reused {
		c.fc.CheckBeforeSend()
	}
	if !req.IsBodyStream() {
		c.fc.Hold()
	} else if reused {
		if err := c.fc.Flush(); err != nil {
			return t.failed(c, err)
		}
	}
	req.UseHostHeader = true
	streamed := req.IsBodyStream() // Write takes the stream off req
	// The splice may look for the header's end just before the body only
	// when the body goes as it is, framed by Content-Length: not a stream,
	// and no trailers (fasthttp then sends the body chunked).
	c.splice.extra, c.splice.bodyLen, c.splice.failed = extra, -1, false
	if len(extra) > 0 && !streamed && len(req.Header.Peek(fasthttp.HeaderTrailer)) == 0 {
		c.splice.bodyLen = len(req.Body())
	}
	var err error
	if req.Header.IsHTTP11() {
		err = req.Write(c.bw)
	} else {
		err = writeAsHTTP11(req, c.bw)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	c.splice.extra = nil
	if err != nil {
		if streamed && !c.splice.failed {
			// Every write towards the upstream went through, so the failure
			// is the body's source: the client. The upstream holds part of
			// a request; the connection cannot be reused.
			t.discard(c)
			return &ClientBodyError{Err: err}
		}
		return t.failed(c, err)
	}
	head := req.Header.IsHead()
	// Not resp.Reset(): that would also clear the flags the server set on
	// its response (no default Date, no default Content-Type), and the
	// upstream's Date would be replaced by ours. Header.Read resets the
	// header itself.
	resp.ResetBody()
	resp.SkipBody = false
	resp.StreamBody = false
	for i := 0; ; i++ {
		if err := resp.Header.Read(c.br); err != nil {
			return t.failed(c, err)
		}
		code := resp.StatusCode()
		if code == fasthttp.StatusSwitchingProtocols {
			t.discard(c)
			return ErrUpgrade
		}
		if code >= 200 {
			break
		}
		if i >= maxInterim {
			t.discard(c)
			return errors.New("upstream sent too many interim (1xx) responses")
		}
	}
	code := resp.StatusCode()
	if head || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		// RFC 9112 §6.3: these never have a body, whatever the header says.
		resp.SkipBody = head
		t.finish(c, resp, req)
		return nil
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= t.cfg.StreamThreshold {
		var err error
		if lent != nil && cl > lendMin && cl <= fusedio.MaxHeld {
			err = readLent(c.br, resp, cl, lent)
		} else {
			err = resp.ReadBody(c.br, 0)
		}
		if err != nil {
			t.discard(c)
			return err
		}
		t.finish(c, resp, req)
		return nil
	}
	return t.streamBody(c, req, resp, cl)
}

// readLent reads a body of n bytes into the buffer in *lent (borrowed
// first if there is none) and makes it resp's raw body. Apart from
// roundTrip, whose frame is on the stack through the whole exchange.
//
//go:noinline
func readLent(br *bufio.Reader, resp *fasthttp.Response, n int, lent **[]byte) error {
	bp := *lent
	if bp == nil {
		bp = fusedio.BorrowBody()
		*lent = bp
	}
	b := (*bp)[:n]
	if _, err := io.ReadFull(br, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	resp.SetBodyRaw(b)
	return nil
}

// writeAsHTTP11 writes a request whose client spoke another version than
// HTTP/1.1. The upstream always hears HTTP/1.1, the version this client
// speaks, whatever the gateway's client spoke (HTTP/1.0, or a later
// HTTP/1 minor version served as 1.1); the request keeps its own for the
// gateway's side of the exchange. Apart from roundTrip, whose frame is on
// the stack through the whole exchange.
//
//go:noinline
func writeAsHTTP11(req *fasthttp.Request, w *bufio.Writer) error {
	var was [16]byte
	n := copy(was[:], req.Header.Protocol())
	req.Header.SetProtocolBytes(http11)
	err := req.Write(w)
	req.Header.SetProtocolBytes(was[:n])
	return err
}

// streamBody leaves a body longer than StreamThreshold, or of unknown
// length (cl -1 chunked, -2 until close), on c as resp's body stream.
//
//go:noinline
func (t *Transport) streamBody(c *conn, req *fasthttp.Request, resp *fasthttp.Response, cl int) error {
	// Stream: the connection now belongs to the body stream.
	s := &c.stream
	*s = bodyStream{c: c, remain: int64(cl), closeAfter: resp.ConnectionClose() || req.ConnectionClose()}
	switch {
	case cl == -1:
		s.mode = modeChunked
		s.cr = httputil.NewChunkedReader(c.br)
	case cl == -2:
		s.mode = modeUntilClose
		cl = -1 // re-framed as chunked towards the client
	default:
		s.mode = modeLength
		// The client has been sent nothing yet: wait for the first byte of
		// a body promised by Content-Length here, so that an upstream that
		// closes right after its header is a clean 502 rather than an empty
		// reply. Once the body streams, a failure can only close the
		// client's connection. Chunked and until-close bodies are not
		// waited for: a stream of events sends its header long before its
		// first event, and the client should see it at once.
		if c.br.Buffered() == 0 {
			if _, err := c.br.Peek(1); err != nil {
				t.discard(c)
				return fmt.Errorf("%w: %v", errNoBody, err)
			}
		}
	}
	resp.SetBodyStream(s, cl)
	return nil
}

// errStale: a pooled connection was found closed by the upstream, or with
// bytes nobody asked for, before the request was sent.
var errStale = fusedio.ErrStale

// failed closes a connection that failed mid-request. fasthttp reports any
// error on the first byte of an answer as io.EOF, so whether the request
// was sent at all comes from the connection.
func (t *Transport) failed(c *conn, err error) error {
	unsent := c.fc.Unsent()
	t.discard(c)
	if unsent {
		return errStale
	}
	return err
}

// finish returns the connection to the pool unless either side asked to
// close it.
func (t *Transport) finish(c *conn, resp *fasthttp.Response, req *fasthttp.Request) {
	if resp.ConnectionClose() || req.ConnectionClose() {
		t.discard(c)
		return
	}
	t.release(c)
}

const (
	modeLength = iota
	modeChunked
	modeUntilClose
)

// bodyStream reads a streamed upstream body off its connection. It lives
// inside the conn (no allocation) and hands the connection back when
// closed.
type bodyStream struct {
	c      *conn
	remain int64
	mode   int
	cr     io.Reader
	done   bool
	failed bool
	closed bool
	// closeAfter: either side said Connection: close.
	closeAfter bool
	// prefix is what BufferBody read before finding the body too long:
	// it is read again first.
	prefix []byte
}

func (s *bodyStream) Read(p []byte) (int, error) {
	if len(s.prefix) > 0 {
		n := copy(p, s.prefix)
		s.prefix = s.prefix[n:]
		return n, nil
	}
	if s.done {
		return 0, io.EOF
	}
	if s.failed || s.closed {
		return 0, io.ErrUnexpectedEOF
	}
	switch s.mode {
	case modeLength:
		if s.remain <= 0 {
			s.done = true
			return 0, io.EOF
		}
		if int64(len(p)) > s.remain {
			p = p[:s.remain]
		}
		n, err := s.c.br.Read(p)
		s.remain -= int64(n)
		if s.remain == 0 {
			s.done = true
			if err == nil || err == io.EOF {
				return n, io.EOF
			}
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			s.failed = true
		}
		return n, err
	case modeChunked:
		n, err := s.cr.Read(p)
		if err == io.EOF {
			if terr := skipTrailers(s.c.br); terr != nil {
				s.failed = true
				return n, terr
			}
			s.done = true
			return n, io.EOF
		}
		if err != nil {
			s.failed = true
		}
		return n, err
	default: // until close
		n, err := s.c.br.Read(p)
		if err == io.EOF {
			s.done = true
		} else if err != nil {
			s.failed = true
		}
		return n, err
	}
}

// BufferBody reads the body of a response this transport streams over
// HTTP/1.1 (chunked, until close, or a Content-Length over the
// threshold) into memory when it ends within limit bytes, making it the
// response's body (sent with a Content-Length), and hands the connection
// back. It reports false when the body is longer, leaving it streamed
// (the bytes read come first again), or is not such a stream (an HTTP/2
// upstream's); an error when the upstream broke the body off, after
// which the response must not be sent. buf is reused for the body.
func BufferBody(resp *fasthttp.Response, limit int, buf []byte) (bool, []byte, error) {
	s, ok := resp.BodyStream().(*bodyStream)
	if !ok || s.closed || len(s.prefix) > 0 {
		return false, buf, nil
	}
	if s.mode == modeLength && s.remain > int64(limit) {
		return false, buf, nil
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max(cap(buf), 4096), limit+1-len(buf)))
		}
		n, err := s.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, buf, err
		}
		if len(buf) > limit {
			s.prefix = buf
			return false, nil, nil // buf now belongs to the stream
		}
	}
	resp.SetBody(buf) // closes the stream: the connection goes back
	return true, buf, nil
}

// Close hands the connection back: to the pool when the body was read to
// its end, else it is closed (its position in the stream is unknown).
func (s *bodyStream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	c := s.c
	t := c.t
	s.cr = nil
	if s.done && !s.failed && !s.closeAfter && s.mode != modeUntilClose {
		t.release(c)
	} else {
		t.discard(c)
	}
	return nil
}

// skipTrailers consumes the trailer section after the last chunk (RFC 9112
// §7.1.2), bounded so a hostile upstream cannot stream headers forever.
func skipTrailers(br *bufio.Reader) error {
	for i := 0; i < 64; i++ {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			return nil
		}
	}
	return errors.New("upstream sent too many trailer fields")
}

// IsIdempotent reports whether a request with method m may be sent again
// after a failure (RFC 9110 §9.2.2).
func IsIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}
