package sdk

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// MaxParams is the most path parameters a route may declare.
const MaxParams = 16

// Param is one path parameter of the matched route.
type Param struct {
	Name  string
	Value []byte // a view into the request's normalized path; do not keep
}

type headerKV struct {
	key   string
	value []byte
	// canon is key as fasthttp stores header names (normalized), made
	// from canonOf (a copy of a key: a key may be a view of a buffer
	// that changes). It stays with the pooled Ctx: plugins set the same
	// few names in the same order on every request, so normalizing each
	// name once per slot saves ~450 instructions per header and request.
	canon, canonOf []byte
}

type valueKV struct {
	key, value any
}

// Ctx is the per-request state shared by the proxy and the filters of one
// request. It is pooled: it is only valid until the request completes, and
// neither it nor any slice it returns may be kept after OnRequest /
// OnResponse / OnLog return. Ctx is not safe for concurrent use.
type Ctx struct {
	noCopy noCopy //nolint:unused

	rc *fasthttp.RequestCtx

	// Route and Service name what matched; set by the proxy before the
	// filters run.
	Route   string
	Service string
	// Consumers are the consumers of the snapshot serving the request;
	// a filter reads credentials through Consumers.Indexed here rather
	// than keep what it read at build, so that it stays valid when a
	// consumer changes.
	Consumers *Consumers
	// Start is when the gateway started handling the request.
	Start time.Time

	requestID    []byte
	host         []byte
	path         []byte
	upstreamPath []byte
	params       [MaxParams]Param
	nparams      int
	consumer     *Consumer
	credential   string
	scopes       []string
	respHeaders  []headerKV
	nRespHeaders int
	values       [8]valueKV
	nvalues      int
	clientIP     netip.Addr
	scratch      []byte
	traceCtx     context.Context        // a recorded request's server span (trace.go)
	logFields    [MaxLogFields]logField // SetLogField (logfields.go)
	nlogFields   int
	logBuf       []byte
	// The flags last, together: apart they would pad to a word each, and
	// the Ctx would overflow the runtime's 1,536-byte size class into the
	// 1,792-byte one (TestCtxSizeClass). A Ctx lives as long as its
	// request, so at 10,000 requests in flight that is 2.5 MB.
	hostSet, upstreamSet, stopped, clientIPSet bool
}

var ctxPool = sync.Pool{New: func() any { return new(Ctx) }}

// AcquireCtx returns an empty Ctx bound to rc from a pool. The proxy does
// this for every request; tests of plugins may use it directly.
func AcquireCtx(rc *fasthttp.RequestCtx) *Ctx {
	c := ctxPool.Get().(*Ctx)
	c.rc = rc
	// fasthttp stamps each request when its header is read; reuse that
	// (one clock read fewer per request), falling back for bare contexts.
	if c.Start = rc.Time(); c.Start.IsZero() {
		c.Start = time.Now()
	}
	return c
}

// ReleaseCtx returns c to the pool; c must not be used afterwards.
func ReleaseCtx(c *Ctx) {
	c.Reset()
	ctxPool.Put(c)
}

// Reset clears c for reuse, keeping its buffers.
func (c *Ctx) Reset() {
	c.rc = nil
	c.Route, c.Service = "", ""
	c.Consumers = nil
	c.Start = time.Time{}
	c.requestID = c.requestID[:0]
	c.host = c.host[:0]
	c.hostSet = false
	c.path = c.path[:0]
	c.upstreamPath = c.upstreamPath[:0]
	c.upstreamSet = false
	for i := 0; i < c.nparams; i++ {
		c.params[i] = Param{}
	}
	c.nparams = 0
	c.consumer = nil
	c.credential = ""
	c.scopes = c.scopes[:0]
	c.nRespHeaders = 0
	for i := 0; i < c.nvalues; i++ {
		c.values[i] = valueKV{}
	}
	c.nvalues = 0
	c.stopped = false
	c.clientIP = netip.Addr{}
	c.clientIPSet = false
	c.traceCtx = nil
	c.resetLogFields()
}

// RequestCtx is the underlying fasthttp request context.
func (c *Ctx) RequestCtx() *fasthttp.RequestCtx { return c.rc }

// Request is the client's request as it will be forwarded; filters may
// change headers and query arguments. Its body is read and replaced with
// RequestBody and SetRequestBody, never through Request().Body(), which
// would read a streamed body into memory whole.
func (c *Ctx) Request() *fasthttp.Request { return &c.rc.Request }

// BodyBuffered reports whether the whole request body is in memory, where
// RequestBody reads it. The proxy decides before the first filter runs: a
// body with a Content-Length up to 256 KiB, or a chunked one that ends
// within 256 KiB, is buffered; a larger one streams to the upstream as it
// arrives, and no filter can read it without holding it all. A request
// without a body counts as buffered (its body is empty).
func (c *Ctx) BodyBuffered() bool { return !c.rc.Request.IsBodyStream() }

// RequestBody is the whole request body when it is buffered, nil when it
// streams (see BodyBuffered). The slice is valid until the body changes or
// the request ends; do not keep it.
func (c *Ctx) RequestBody() []byte {
	req := &c.rc.Request
	if req.IsBodyStream() {
		return nil
	}
	return req.Body()
}

// SetRequestBody replaces the request body, buffered or streamed, with a
// copy of b, and sets Content-Length to match. A streamed body's unread
// rest is discarded by the server after the answer.
func (c *Ctx) SetRequestBody(b []byte) {
	req := &c.rc.Request
	req.SetBody(b)
	req.Header.SetContentLength(len(b))
}

// Response is the response being built: empty in the request phase, the
// upstream's (or a filter's) in the response phase. A response whose body
// is streamed has Response().IsBodyStream() true: its body must not be read
// or modified.
func (c *Ctx) Response() *fasthttp.Response { return &c.rc.Response }

// Method is the request method.
func (c *Ctx) Method() []byte { return c.rc.Request.Header.Method() }

// Host is the host the client asked for (the request target's authority,
// else its Host header) as the proxy read it before any filter ran. A
// filter may change the Host header that goes upstream; this stays the
// client's, so what is keyed on the client's view of the URL (the cache,
// X-Forwarded-Host) reads it here. On a Ctx the proxy did not prepare (a
// plugin's unit test) it is the request's host as fasthttp reads it now.
func (c *Ctx) Host() []byte {
	if !c.hostSet {
		return c.rc.Host()
	}
	return c.host
}

// SetHost is called by the proxy with the client's host, before the
// filters run.
func (c *Ctx) SetHost(h []byte) {
	c.host = append(c.host[:0], h...)
	c.hostSet = true
}

// Path is the request path after normalization (percent-decoding, dot
// segments and duplicate slashes resolved). It is the single interpretation
// of the path used by the router, by every filter and, re-encoded, for what
// goes upstream: filters must decide on this, never on the raw URI.
func (c *Ctx) Path() []byte { return c.path }

// SetPath is called by the proxy with the normalized path.
func (c *Ctx) SetPath(p []byte) { c.path = append(c.path[:0], p...) }

// UpstreamPath is the path that will be sent upstream (after strip_path and
// any rewrite), without the query string.
func (c *Ctx) UpstreamPath() []byte {
	if c.upstreamSet {
		return c.upstreamPath
	}
	return c.path
}

// SetUpstreamPath replaces the path sent upstream. p is copied.
func (c *Ctx) SetUpstreamPath(p []byte) {
	c.upstreamPath = append(c.upstreamPath[:0], p...)
	c.upstreamSet = true
}

// RequestID is the request's X-Request-Id (the client's or a generated one).
func (c *Ctx) RequestID() []byte { return c.requestID }

// SetRequestID is called by the proxy.
func (c *Ctx) SetRequestID(id []byte) { c.requestID = append(c.requestID[:0], id...) }

// RequestIDBuf lets the proxy generate an ID in place without allocating.
func (c *Ctx) RequestIDBuf() *[]byte { return &c.requestID }

// AddParam is called by the proxy for each matched path parameter. Extra
// parameters beyond MaxParams are ignored (the config refuses them).
func (c *Ctx) AddParam(name string, value []byte) {
	if c.nparams < MaxParams {
		c.params[c.nparams] = Param{Name: name, Value: value}
		c.nparams++
	}
}

// Param returns the value of the path parameter name, or nil.
func (c *Ctx) Param(name string) []byte {
	for i := 0; i < c.nparams; i++ {
		if c.params[i].Name == name {
			return c.params[i].Value
		}
	}
	return nil
}

// Params returns the matched path parameters; do not keep the slice.
func (c *Ctx) Params() []Param { return c.params[:c.nparams] }

// Consumer is the authenticated consumer, or nil.
func (c *Ctx) Consumer() *Consumer { return c.consumer }

// SetConsumer records who the request is from; the proxy then sends
// X-Consumer-Name and X-Consumer-Groups upstream. credential names the
// credential that identified it (a key ID, a JWT `sub`), for rate limits
// keyed on credentials and for logs.
func (c *Ctx) SetConsumer(cons *Consumer, credential string) {
	c.consumer = cons
	c.credential = credential
}

// Credential is the identifier given to SetConsumer.
func (c *Ctx) Credential() string { return c.credential }

// Scopes are the OAuth2 / JWT scopes of the request's token, if any.
func (c *Ctx) Scopes() []string { return c.scopes }

// AddScope records a scope granted to the request (used by acl).
func (c *Ctx) AddScope(s string) { c.scopes = append(c.scopes, s) }

// HasScope reports whether scope s was granted.
func (c *Ctx) HasScope(s string) bool {
	for _, x := range c.scopes {
		if x == s {
			return true
		}
	}
	return false
}

// ClientIP is the peer address of the connection. Plugins that trust
// X-Forwarded-For from configured proxies compute their own.
func (c *Ctx) ClientIP() netip.Addr {
	if !c.clientIPSet {
		c.clientIPSet = true
		if a, ok := c.rc.RemoteAddr().(*net.TCPAddr); ok {
			ip, _ := netip.AddrFromSlice(a.IP)
			c.clientIP = ip.Unmap()
		}
	}
	return c.clientIP
}

// SetResponseHeader sets a header on whatever response the client finally
// gets (the upstream's, a cache hit, or a gateway error). Headers written
// directly on Response() in the request phase would be overwritten by the
// upstream response; this defers them. value is copied.
func (c *Ctx) SetResponseHeader(key string, value []byte) {
	if c.nRespHeaders < len(c.respHeaders) {
		h := &c.respHeaders[c.nRespHeaders]
		h.key = key
		h.value = append(h.value[:0], value...)
	} else {
		c.respHeaders = append(c.respHeaders, headerKV{key: key, value: append([]byte(nil), value...)})
	}
	c.nRespHeaders++
}

// SetResponseHeaderInt is SetResponseHeader with a decimal integer value.
func (c *Ctx) SetResponseHeaderInt(key string, v int64) {
	c.scratch = strconv.AppendInt(c.scratch[:0], v, 10)
	c.SetResponseHeader(key, c.scratch)
}

// ApplyResponseHeaders writes the deferred headers onto Response(). The
// proxy calls it once the final response is in place.
func (c *Ctx) ApplyResponseHeaders() {
	h := &c.rc.Response.Header
	for i := 0; i < c.nRespHeaders; i++ {
		kv := &c.respHeaders[i]
		if kv.canonOf == nil || string(kv.canonOf) != kv.key {
			kv.canonOf = append(kv.canonOf[:0], kv.key...)
			kv.canon = fasthttp.AppendNormalizedHeaderKey(kv.canon[:0], kv.key)
		}
		// What SetBytesV does, without normalizing the name again (the
		// gateway never turns fasthttp's normalization off).
		h.SetCanonical(kv.canon, kv.value)
	}
}

// SetValue stores a per-request value for later phases (the cache plugin
// remembers its lookup key, for example). Use a pointer-typed package
// variable as key so that storing does not allocate.
func (c *Ctx) SetValue(key, value any) {
	for i := 0; i < c.nvalues; i++ {
		if c.values[i].key == key {
			c.values[i].value = value
			return
		}
	}
	if c.nvalues == len(c.values) {
		panic("sdk: more than 8 values stored on one Ctx")
	}
	c.values[c.nvalues] = valueKV{key, value}
	c.nvalues++
}

// Value returns the value stored under key, or nil.
func (c *Ctx) Value(key any) any {
	for i := 0; i < c.nvalues; i++ {
		if c.values[i].key == key {
			return c.values[i].value
		}
	}
	return nil
}

// Stopped reports whether a request filter answered the request itself.
func (c *Ctx) Stopped() bool { return c.stopped }

// MarkStopped is called by the chain runner when a filter returns Stop.
func (c *Ctx) MarkStopped() { c.stopped = true }

// Fail writes a gateway error response, {"status":..,"error":..,
// "request_id":..}, and returns Stop so a filter can `return c.Fail(...),
// nil`.
func (c *Ctx) Fail(status int, msg string) Status {
	WriteError(c.rc, status, msg, c.requestID)
	return Stop
}

// noCopy makes `go vet` report copies of pooled types.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// ValidParamName is the rule for route parameter names ({id} in a path
// pattern, and in the templates that use them): letters, digits and "_",
// not starting with a digit.
func ValidParamName(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
