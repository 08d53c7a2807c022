package wasm

import (
	"bytes"
	"strconv"

	"github.com/weirgw/weir/internal/httpsyntax"

	"github.com/weirgw/weir/sdk"
)

// Header maps as the guest sees them: the fasthttp request and response
// headers plus Envoy's pseudo-headers, with lower-case names.
//
//	request headers (map 0): :authority (the Host), :method, :path (the
//	  normalized path, re-encoded, plus the raw query), :scheme, and every
//	  header except Host. Readable from the request phase on; writable in
//	  the request phase.
//	response headers (map 2): :status and every header. Readable and
//	  writable in the response phase, readable in the log phase.
//	trailers (maps 1 and 3): always empty; writes are refused.
//
// Unavailable maps answer BAD_ARGUMENT, as Envoy does.

var (
	keyAuthority = []byte(":authority")
	keyMethod    = []byte(":method")
	keyPath      = []byte(":path")
	keyScheme    = []byte(":scheme")
	keyStatus    = []byte(":status")
	strHTTP      = []byte("http")
	strHTTPS     = []byte("https")
)

// Indexes of instance.pseudo, the scratch buffers of pseudo-header values.
const (
	pseudoPath = iota
	pseudoStatus
	pseudoJoin
)

// readable reports whether map m may be read now.
func (in *instance) readable(m uint32) bool {
	if in.c == nil {
		return false
	}
	switch m {
	case mapRequestHeaders, mapRequestTrailers:
		return true
	case mapResponseHeaders, mapResponseTrailers:
		return in.phase >= phaseResponse
	}
	return false
}

// writable reports whether map m may be changed now.
func (in *instance) writable(m uint32) bool {
	switch m {
	case mapRequestHeaders:
		return in.c != nil && in.phase == phaseRequest
	case mapResponseHeaders:
		return in.c != nil && in.phase == phaseResponse
	}
	return false
}

// headerPairs lists map m as views into the headers and the instance's
// scratch buffers; valid until the headers change.
func (in *instance) headerPairs(m uint32) ([]kv, status) {
	if !in.readable(m) {
		return nil, statusBadArgument
	}
	kvs := in.kvs[:0]
	switch m {
	case mapRequestHeaders:
		req := in.c.Request()
		kvs = append(kvs,
			kv{keyAuthority, req.Header.Host()},
			kv{keyMethod, req.Header.Method()},
			kv{keyPath, in.pathValue()},
			kv{keyScheme, in.scheme()},
		)
		for k, v := range req.Header.All() {
			if !isHost(k) { // it is :authority
				kvs = append(kvs, kv{k, v})
			}
		}
	case mapResponseHeaders:
		resp := in.c.Response()
		kvs = append(kvs, kv{keyStatus, in.statusValue()})
		for k, v := range resp.Header.All() {
			kvs = append(kvs, kv{k, v})
		}
	}
	in.kvs = kvs
	return kvs, statusOK
}

// headerCount is the num_headers argument of the header callbacks.
// It counts what headerPairs would list without building the list (the
// path's re-encoding included).
func (in *instance) headerCount(m uint32) uint64 {
	if !in.readable(m) {
		return 0
	}
	var n uint64
	switch m {
	case mapRequestHeaders:
		n = 4 // :authority, :method, :path, :scheme
		for k := range in.c.Request().Header.All() {
			if !isHost(k) {
				n++
			}
		}
	case mapResponseHeaders:
		n = 1 // :status
		for range in.c.Response().Header.All() {
			n++
		}
	}
	return n
}

// headerValue returns the value of key in map m; several values are
// joined with ",", as Envoy does.
func (in *instance) headerValue(m uint32, key []byte) ([]byte, status) {
	if !in.readable(m) {
		return nil, statusBadArgument
	}
	if m == mapRequestTrailers || m == mapResponseTrailers {
		return nil, statusNotFound
	}
	if len(key) > 0 && key[0] == ':' {
		var v []byte
		switch {
		case m == mapRequestHeaders && bytes.Equal(key, keyAuthority):
			v = in.c.Request().Header.Host()
		case m == mapRequestHeaders && bytes.Equal(key, keyMethod):
			v = in.c.Request().Header.Method()
		case m == mapRequestHeaders && bytes.Equal(key, keyPath):
			v = in.pathValue()
		case m == mapRequestHeaders && bytes.Equal(key, keyScheme):
			v = in.scheme()
		case m == mapResponseHeaders && bytes.Equal(key, keyStatus):
			v = in.statusValue()
		default:
			return nil, statusNotFound
		}
		return v, statusOK
	}
	var vals [][]byte
	if m == mapRequestHeaders {
		vals = in.c.Request().Header.PeekAll(sdk.B2S(key))
	} else {
		vals = in.c.Response().Header.PeekAll(sdk.B2S(key))
	}
	switch len(vals) {
	case 0:
		return nil, statusNotFound
	case 1:
		return vals[0], statusOK
	}
	j := in.pseudo[pseudoJoin][:0]
	for i, v := range vals {
		if i > 0 {
			j = append(j, ',')
		}
		j = append(j, v...)
	}
	in.pseudo[pseudoJoin] = j
	return j, statusOK
}

// setHeader adds (add) or replaces a header of map m.
func (in *instance) setHeader(m uint32, key, value []byte, add bool) status {
	if !in.writable(m) {
		return statusBadArgument
	}
	if len(key) > 0 && key[0] == ':' {
		return in.setPseudo(m, key, value)
	}
	if !httpsyntax.IsTokenBytes(key) || !httpsyntax.ValidFieldValueBytes(value) {
		return statusBadArgument
	}
	if isFraming(key) {
		// Content-Length and Transfer-Encoding describe the body as the
		// gateway sends it; it sets them itself.
		return statusOK
	}
	// Replace removes every value first: fasthttp's Set only overwrites
	// the first of repeated fields, the ABI wants exactly one left.
	if m == mapRequestHeaders {
		h := &in.c.Request().Header
		switch {
		case isHost(key):
			h.SetHostBytes(value)
		case add:
			h.AddBytesKV(key, value)
		default:
			h.DelBytes(key)
			h.AddBytesKV(key, value)
		}
		return statusOK
	}
	h := &in.c.Response().Header
	if !add {
		h.DelBytes(key)
	}
	h.AddBytesKV(key, value)
	return statusOK
}

// removeHeader deletes every value of key from map m.
func (in *instance) removeHeader(m uint32, key []byte) status {
	if !in.writable(m) {
		return statusBadArgument
	}
	if len(key) > 0 && key[0] == ':' {
		return statusBadArgument // pseudo-headers cannot be removed
	}
	if isFraming(key) {
		return statusOK
	}
	if m == mapRequestHeaders {
		in.c.Request().Header.DelBytes(key)
	} else {
		in.c.Response().Header.DelBytes(key)
	}
	return statusOK
}

// setPairs replaces map m with p: every header is removed (except Host on
// a request, which is :authority), then p is applied in order. p is
// checked first, so a bad pair changes nothing.
func (in *instance) setPairs(m uint32, p pairs) status {
	if !in.writable(m) {
		return statusBadArgument
	}
	check := p
	for {
		k, v, ok := check.next()
		if !ok {
			break
		}
		if len(k) > 0 && k[0] == ':' {
			if !in.pseudoKnown(m, k) {
				return statusBadArgument
			}
			continue
		}
		if !httpsyntax.IsTokenBytes(k) || !httpsyntax.ValidFieldValueBytes(v) {
			return statusBadArgument
		}
	}
	// Copy the current names out before deleting: deleting reorders the
	// header storage the names point into.
	names, ends := in.names[:0], in.ends[:0]
	if m == mapRequestHeaders {
		for k := range in.c.Request().Header.All() {
			if !isHost(k) && !isFraming(k) {
				names = append(names, k...)
				ends = append(ends, len(names))
			}
		}
	} else {
		for k := range in.c.Response().Header.All() {
			if !isFraming(k) {
				names = append(names, k...)
				ends = append(ends, len(names))
			}
		}
	}
	in.names, in.ends = names, ends
	start := 0
	for _, end := range ends {
		name := names[start:end]
		start = end
		if m == mapRequestHeaders {
			in.c.Request().Header.DelBytes(name)
		} else {
			in.c.Response().Header.DelBytes(name)
		}
	}
	for {
		k, v, ok := p.next()
		if !ok {
			break
		}
		if st := in.setHeader(m, k, v, true); st != statusOK {
			return st
		}
	}
	return statusOK
}

// pseudoKnown reports whether key is a pseudo-header the guest may set
// in map m.
func (in *instance) pseudoKnown(m uint32, key []byte) bool {
	if m == mapRequestHeaders {
		return bytes.Equal(key, keyAuthority) || bytes.Equal(key, keyMethod) || bytes.Equal(key, keyPath) || bytes.Equal(key, keyScheme)
	}
	return bytes.Equal(key, keyStatus)
}

// setPseudo writes a pseudo-header: :method, :path (the path sent
// upstream, and the query string), :authority (the Host) or :status. The
// scheme cannot change.
func (in *instance) setPseudo(m uint32, key, value []byte) status {
	if m == mapResponseHeaders {
		if !bytes.Equal(key, keyStatus) {
			return statusBadArgument
		}
		code, err := strconv.Atoi(sdk.B2S(value))
		if err != nil || len(value) != 3 || code < 100 || code > 599 {
			return statusBadArgument
		}
		in.c.Response().SetStatusCode(code)
		return statusOK
	}
	req := in.c.Request()
	switch {
	case bytes.Equal(key, keyMethod):
		if !httpsyntax.IsTokenBytes(value) {
			return statusBadArgument
		}
		req.Header.SetMethodBytes(value)
	case bytes.Equal(key, keyAuthority):
		if len(value) == 0 || !httpsyntax.ValidFieldValueBytes(value) {
			return statusBadArgument
		}
		req.Header.SetHostBytes(value)
	case bytes.Equal(key, keyPath):
		return in.setPath(value)
	case bytes.Equal(key, keyScheme):
		// The gateway forwards with its own scheme per service target.
		return statusBadArgument
	default:
		return statusBadArgument
	}
	return statusOK
}

// setPath applies a new :path ("/p%20q?x=1"): the decoded path becomes
// the path sent upstream and the query string replaces the client's.
func (in *instance) setPath(value []byte) status {
	raw, query, hasQuery := bytes.Cut(value, []byte{'?'})
	dec, ok := appendUnescapedPath(in.pathBuf[:0], raw)
	in.pathBuf = dec
	if !ok || !httpsyntax.ValidPath(dec) {
		return statusBadArgument
	}
	if bytes.IndexByte(query, '#') >= 0 || !httpsyntax.ValidFieldValueBytes(query) {
		return statusBadArgument
	}
	in.c.SetUpstreamPath(dec)
	uri := in.c.Request().URI()
	if hasQuery {
		uri.SetQueryStringBytes(query)
	} else {
		uri.SetQueryStringBytes(nil)
	}
	in.rs.path = append(in.rs.path[:0], value...)
	in.rs.pathSet = true
	return statusOK
}

// pathValue is :path: what the guest set, else the normalized request
// path re-encoded, plus the client's raw query string. Guests decide on
// the normalized form, like every other filter (sdk.Ctx.Path).
func (in *instance) pathValue() []byte {
	if in.rs != nil && in.rs.pathSet {
		return in.rs.path
	}
	b := httpsyntax.AppendEscapedPath(in.pseudo[pseudoPath][:0], in.c.Path())
	if q := in.c.Request().URI().QueryString(); len(q) > 0 {
		b = append(append(b, '?'), q...)
	}
	in.pseudo[pseudoPath] = b
	return b
}

func (in *instance) scheme() []byte {
	if in.c.RequestCtx().IsTLS() {
		return strHTTPS
	}
	return strHTTP
}

func (in *instance) statusValue() []byte {
	b := strconv.AppendInt(in.pseudo[pseudoStatus][:0], int64(in.c.Response().StatusCode()), 10)
	in.pseudo[pseudoStatus] = b
	return b
}

func isHost(k []byte) bool { return len(k) == 4 && httpsyntax.EqualFoldLower(k, "host") }

func isFraming(k []byte) bool { return sdk.FramingHeader(k) }

// appendUnescapedPath decodes %XX escapes; a malformed escape fails.
func appendUnescapedPath(dst, p []byte) ([]byte, bool) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			dst = append(dst, c)
			continue
		}
		if i+2 >= len(p) {
			return dst, false
		}
		hi, ok1 := unhex(p[i+1])
		lo, ok2 := unhex(p[i+2])
		if !ok1 || !ok2 {
			return dst, false
		}
		dst = append(dst, hi<<4|lo)
		i += 2
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
