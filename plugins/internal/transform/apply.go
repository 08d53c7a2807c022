package transform

import (
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// scratch holds the buffers of one request's transformation. It comes from
// scratchPool and goes back before OnRequest / OnResponse returns; nothing
// in it outlives the call (the proxy and fasthttp copy what they keep, and
// a rewritten body is handed over with SwapBody, which gives us fasthttp's
// previous buffer in exchange).
type scratch struct {
	noCopy noCopy //nolint:unused

	buf  []byte // rendered templates, the edited query string
	vals []byte // renamed header values, back to back
	offs []int  // end of each value in vals
	out  []byte // the rewritten JSON body
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledBody: larger body buffers are left to the GC rather than kept
// alive in the pool by one big request.
const maxPooledBody = 2 << 20

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.out) > maxPooledBody {
		s.out = nil
	}
	scratchPool.Put(s)
}

var (
	headerAcceptEncoding = "Accept-Encoding"
	headerRange          = "Range"
	headerIfRange        = "If-Range"
	identity             = []byte("identity")
)

// ApplyRequest runs the request phase. For request_transformer it edits
// the request: JSON body, headers, query, path, in that order (the body is
// judged by the Content-Type the client sent). For response_transformer
// with JSON operations it asks the upstream for a body it can edit: it
// removes Accept-Encoding (a compressed body cannot be edited) and Range /
// If-Range (a 206 carries a slice of the document, and passing the
// upstream's slice untouched would leak what json.remove hides).
//
// A template naming a parameter the request lacks returns an error (the
// proxy answers 500 and logs it); a path parameter that would make a dot
// segment answers 400.
func (p *Program) ApplyRequest(c *sdk.Ctx) (sdk.Status, error) {
	if p.side == Response {
		if p.json != nil {
			h := &c.Request().Header
			h.Del(headerAcceptEncoding)
			h.Del(headerRange)
			h.Del(headerIfRange)
		}
		return sdk.Continue, nil
	}
	req := c.Request()
	var s *scratch
	if p.scratchNeeded {
		s = getScratch()
		defer putScratch(s)
	}
	if p.json != nil {
		p.editBody(req, &req.Header, !c.BodyBuffered(), false, s)
	}
	if err := p.headers.apply(&req.Header, c, s); err != nil {
		return sdk.Continue, err
	}
	if !p.query.empty() {
		uri := req.URI()
		out, changed, missing := p.query.apply(s.buf[:0], uri.QueryString(), c)
		s.buf = out
		if missing != "" {
			return sdk.Continue, missingParam("query", missing)
		}
		if changed {
			// SetQueryStringBytes copies and drops parsed arguments, so
			// QueryString, QueryArgs and RequestURI agree afterwards; the
			// proxy forwards QueryString.
			uri.SetQueryStringBytes(out)
		}
	}
	if p.path != nil {
		if p.path.IsLiteral() {
			c.SetUpstreamPath(s2b(p.path.lit))
		} else {
			var missing string
			s.buf, missing = p.path.appendTo(s.buf[:0], c, nil)
			if missing != "" {
				return sdk.Continue, missingParam("path", missing)
			}
			if hasDotSegment(s.buf) {
				// Only a regex route's capture can hold "/": refuse rather
				// than let the upstream resolve "..".
				return c.Fail(fasthttp.StatusBadRequest, "invalid path parameter"), nil
			}
			c.SetUpstreamPath(s.buf)
		}
	}
	return sdk.Continue, nil
}

// ApplyResponse runs the response phase: JSON body, then headers.
func (p *Program) ApplyResponse(c *sdk.Ctx) error {
	resp := c.Response()
	var s *scratch
	if p.scratchNeeded {
		s = getScratch()
		defer putScratch(s)
	}
	if p.json != nil {
		p.editBody(resp, &resp.Header, resp.IsBodyStream(), resp.StatusCode() == fasthttp.StatusPartialContent, s)
		// ETag stays as the upstream sent it. The edit is a function of
		// the upstream's bytes, so one upstream version always becomes the
		// same body and its tag still names it; If-None-Match and If-Match
		// keep working against the upstream (weakening the tag, as nginx's
		// gzip does, would make every If-Match fail its strong
		// comparison). The hazard of a strong tag on edited bytes, a range
		// spliced from the upstream's bytes via If-Range, cannot occur:
		// ApplyRequest removes Range and If-Range.
	}
	return p.headers.apply(&resp.Header, c, s)
}

// message is what both *fasthttp.Request and *fasthttp.Response offer
// for the body edit; bodyHeader is what their headers offer. The body is
// edited by one function for both sides, so the request and the response
// skip, count and rewrite a JSON body alike. Passing the pointers as
// interfaces does not allocate.
type message interface {
	Body() []byte
	SwapBody(body []byte) []byte
}

type bodyHeader interface {
	ContentType() []byte
	ContentEncoding() []byte
	SetContentLength(contentLength int)
}

// editBody rewrites m's body when it is a buffered, unencoded JSON
// document of at most max_body_bytes, counting every body it leaves alone
// by the reason; streamed says the body is not in memory (for a request,
// the proxy's decision, sdk.Ctx.BodyBuffered); partial is a 206 response,
// whose body is a slice of the document.
func (p *Program) editBody(m message, h bodyHeader, streamed, partial bool, s *scratch) {
	if !isJSONType(h.ContentType()) {
		return
	}
	if streamed {
		// Reading it would buffer what the proxy chose to stream.
		p.count(resStreamed)
		return
	}
	if partial {
		p.count(resPartial)
		return
	}
	if ce := h.ContentEncoding(); len(ce) > 0 && !bytes.EqualFold(ce, identity) {
		p.count(resEncoded)
		return
	}
	body := m.Body()
	if len(body) == 0 {
		return
	}
	if len(body) > p.maxBody {
		p.count(resTooLarge)
		return
	}
	out, res := p.json.rewrite(s.out[:0], body)
	p.count(res)
	if res != resRewritten {
		s.out = out[:0]
		return
	}
	// SwapBody also drops a body set with SetBodyRaw (a cache hit shares
	// its stored bytes that way) without writing into it.
	s.out = m.SwapBody(out)[:0]
	h.SetContentLength(len(out))
}

func (p *Program) count(r jsonResult) {
	if c := p.results[r]; c != nil {
		c.Inc()
	}
}

// isJSONType reports whether a Content-Type is application/json or a
// "+json" structured syntax suffix type (RFC 6839 §3.1), parameters
// ignored.
func isJSONType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	const app, suffix = "application/json", "+json"
	if len(ct) == len(app) {
		return bytes.EqualFold(ct, s2b(app))
	}
	return len(ct) > len(suffix) && bytes.IndexByte(ct, '/') > 0 && bytes.EqualFold(ct[len(ct)-len(suffix):], s2b(suffix))
}

// hasDotSegment reports whether path has a "." or ".." segment.
func hasDotSegment(path []byte) bool {
	start := 0
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			seg := path[start:i]
			if len(seg) == 1 && seg[0] == '.' || len(seg) == 2 && seg[0] == '.' && seg[1] == '.' {
				return true
			}
			start = i + 1
		}
	}
	return false
}
