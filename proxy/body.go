package proxy

import (
	"io"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/sdk"
)

// streamThreshold: request and response bodies up to this size are
// buffered (cheap, zero-allocation); larger ones stream. A request body of
// unknown length (chunked) is buffered when it ends within it (below); a
// response body of unknown length streams. The value is the defaults
// table's (proxy/config/defaults.go), which the transport also applies.
const streamThreshold = config.DefaultStreamThreshold

// The request body is decided once, here, before any filter runs: the
// server reads every body as a stream (StreamRequestBody), which fasthttp
// attaches even to four bytes sent with Content-Length, so without this
// step no plugin could ever see a body. After it, a request either holds
// its whole body in memory (Request().IsBodyStream() false, what
// sdk.Ctx.BodyBuffered reports) or streams it to the upstream untouched.
//
//   - Content-Length up to streamThreshold: read whole, buffered.
//   - Content-Length above it: streamed (server.max_body_bytes was checked
//     against the announced length already).
//   - chunked: read up to streamThreshold; a body that ends by then is
//     buffered and goes upstream with a Content-Length, a longer one
//     streams (the bytes already read, then the rest), counted against
//     server.max_body_bytes on the way. A chunked body that announces
//     trailers always streams: a buffered body has no place for them, and
//     so does a gRPC call's over HTTP/2 (a client stream may last as long
//     as the call, and wait for answers between its messages).

// streamedBody is a streamed chunked body as the upstream reads it: the
// limit, over the bytes read while deciding, then the rest. It is made
// for each request, not kept in the pooled request state: an HTTP/2
// upstream's client (x/net) reads the body from its own goroutine, which
// may still read after the handler returned (a gRPC call streams both
// ways while the answer is written; a call cut short leaves its body
// writer to notice), when the pooled state already serves another
// request.
type streamedBody struct {
	limit sdk.LimitedBody
	pre   prefixedBody
}

// prefixedBody streams a chunked body whose first bytes were read while
// deciding whether to buffer it: those bytes, then the rest of the stream.
type prefixedBody struct {
	prefix []byte
	r      io.Reader
}

func (p *prefixedBody) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// readBody applies the rule above to the request. It returns false when
// it answered the request itself (the body was too large, malformed, cut
// short or too slow); no upstream is involved then.
func (s *Server) readBody(c *sdk.Ctx, r *route, st *reqState) bool {
	req := c.Request()
	if !req.IsBodyStream() {
		return true
	}
	maxBody := s.maxBody.Load()
	stream := req.BodyStream()
	cl := req.Header.ContentLength()
	if cl >= 0 {
		if cl > streamThreshold {
			return true
		}
		if cap(st.body) < cl {
			st.body = make([]byte, 0, cl) // the size is known: one allocation
		}
		buf, _, err := readUpTo(st.body[:0], stream, cl)
		st.body = buf
		if err == nil && len(buf) < cl {
			// A request stream ends early, without an error, when the
			// client closes its side before Content-Length bytes came.
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			s.bodyFailed(c, r, err)
			return false
		}
		// The stream is at its end: the body is now the bytes read, and
		// the request's Content-Length already says how many.
		req.SetBodyRaw(buf)
		return true
	}
	limit := int64(streamThreshold)
	if maxBody < limit {
		limit = maxBody
	}
	var pre prefixedBody
	if len(req.Header.Peek(fasthttp.HeaderTrailer)) > 0 || isH2GRPCBody(stream, req) {
		pre = prefixedBody{r: stream}
	} else {
		buf, eof, err := readUpTo(st.body[:0], stream, int(limit)+1)
		st.body = buf
		if err != nil {
			s.bodyFailed(c, r, err)
			return false
		}
		if eof {
			req.SetBodyRaw(buf)
			req.Header.SetContentLength(len(buf))
			return true
		}
		if int64(len(buf)) > maxBody {
			s.fail(c, r, fasthttp.StatusRequestEntityTooLarge, "request body too large")
			c.RequestCtx().SetConnectionClose()
			return false
		}
		pre = prefixedBody{prefix: buf, r: stream}
		// The prefix goes with the body; the pooled state grows another.
		st.body = nil
	}
	sb := &streamedBody{pre: pre}
	// A chunked body's size is only known as it streams: count it on the
	// way through and fail the forward once it passes the limit.
	sb.limit.Reset(&sb.pre, maxBody)
	st.limit = &sb.limit
	req.SetBodyStream(st.limit, -1)
	return true
}

// readUpTo appends at most n bytes of r to buf. eof reports that r ended
// within them; a clean end is not an error.
func readUpTo(buf []byte, r io.Reader, n int) (_ []byte, eof bool, err error) {
	for len(buf) < n {
		if len(buf) == cap(buf) {
			// Grown as the body arrives (a chunked body's size is unknown:
			// a small one must not cost the threshold), and kept by the
			// pooled request state, so a warm one allocates nothing.
			nb := make([]byte, len(buf), min(n, max(2*cap(buf), 4096)))
			copy(nb, buf)
			buf = nb
		}
		k, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
	if n == 0 {
		return buf, true, nil
	}
	return buf, false, nil
}

// bodyFailed answers a request whose body could not be read from the
// client. The connection is closed: its position in the stream is
// unknown. Nothing was sent upstream, so no target is blamed.
func (s *Server) bodyFailed(c *sdk.Ctx, r *route, err error) {
	// The same classification as a streamed body failing during the
	// forward (sdk.ClientBodyStatus): one answer for one client fault.
	status, msg := sdk.ClientBodyStatus(err)
	s.fail(c, r, status, msg)
	c.RequestCtx().SetConnectionClose()
	s.log.Debug("reading the request body failed", "request_id", string(c.RequestID()), "error", err)
}
