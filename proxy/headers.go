package proxy

import (
	"bytes"
	"iter"
	"math/rand/v2"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/httpsyntax"
	"github.com/weirgw/weir/sdk"
)

// Hop-by-hop fields (RFC 9110 §7.6.1) that are never forwarded, in either
// direction. Connection itself and the fields it names are handled by
// removeHopByHop; Transfer-Encoding and Content-Length are framing, which
// fasthttp regenerates on each side.
var hopByHop = [...]string{
	"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Upgrade",
}

// Protected request headers: only the gateway may set them, so a copy sent
// by a client is always removed (sdk/headers.go lists every field the gateway owns).
var protectedRequestHeaders = [...]string{"X-Consumer-Name", "X-Consumer-Groups"}

type headerDeleter interface {
	Peek(key string) []byte
	Del(key string)
}

// removeHopByHop deletes the hop-by-hop fields and every field named in
// Connection. Peek of "Connection" returns the raw list (fasthttp keeps
// only "close" as a flag).
func removeHopByHop(h headerDeleter) {
	if conn := h.Peek("Connection"); len(conn) > 0 {
		for len(conn) > 0 {
			var tok []byte
			tok, conn = nextToken(conn)
			if len(tok) == 0 || isFramingHeader(tok) {
				continue
			}
			h.Del(b2s(tok))
		}
		h.Del("Connection")
	}
	for _, k := range hopByHop {
		h.Del(k)
	}
}

// nextToken splits the first element off a comma-separated field value
// (RFC 9110 §5.6.1), without the whitespace around it.
func nextToken(v []byte) (tok, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		tok, rest = v[:i], v[i+1:]
	} else {
		tok = v
	}
	return bytes.TrimSpace(tok), rest
}

// Header scan: one pass over the names tells which removals a message
// needs, so the common message (none of these fields) pays for a scan, not
// for a dozen Del calls that each normalize a name and search the list.
type hdrFlags uint16

const (
	hasHopByHop   hdrFlags = 1 << iota // a hop-by-hop field or Connection
	hasProtected                       // X-Consumer-Name / X-Consumer-Groups
	hasTwin                            // an underscore twin of a protected field
	hasXFF                             // X-Forwarded-For
	hasXFP                             // X-Forwarded-Proto
	hasXFH                             // X-Forwarded-Host
	hasTrace                           // Traceparent
	hasUnderscore                      // a name holding "_"
	hasBadName                         // a name that is not a token ("X A")
	hasAuthTwice                       // Authorization more than once
	hasUpgrade                         // Upgrade (a WebSocket handshake, maybe)
)

// wireFlags are the flags that make serve look closer at a request
// before routing it (wire.go).
const wireFlags = hasUnderscore | hasBadName | hasAuthTwice

// fieldScan is one pass over a header block: the flags header hygiene acts
// on, and the fields the proxy reads on every request, so none of them
// costs a Peek (which copies and normalizes the name, then searches the
// list). Values point into the header and stay valid until that field is
// set or the header reset; the first of repeated fields wins, as with Peek.
type fieldScan struct {
	flags     hdrFlags
	dated     bool   // Date
	auth      bool   // Authorization (a flag only when repeated)
	requestID []byte // X-Request-Id
	xff       []byte // X-Forwarded-For
	trace     []byte // Traceparent
}

func (sc *fieldScan) scan(seq iter.Seq2[[]byte, []byte]) {
	*sc = fieldScan{}
	for k, v := range seq {
		switch len(k) {
		case 4:
			if bytes.EqualFold(k, []byte("Date")) {
				sc.dated = true
				continue
			}
		case 7:
			if bytes.EqualFold(k, []byte("Upgrade")) {
				sc.flags |= hasHopByHop | hasUpgrade
				continue
			}
		case 11:
			if bytes.EqualFold(k, []byte("Traceparent")) {
				sc.first(hasTrace, &sc.trace, v)
				continue
			}
		case 12:
			if sc.requestID == nil && bytes.EqualFold(k, []byte("X-Request-Id")) {
				sc.requestID = v[:len(v):len(v)]
				continue
			}
		case 13:
			if bytes.EqualFold(k, []byte("Authorization")) {
				if sc.auth {
					sc.flags |= hasAuthTwice
				}
				sc.auth = true
				continue
			}
		case 15:
			if bytes.EqualFold(k, []byte("X-Forwarded-For")) {
				sc.first(hasXFF, &sc.xff, v)
				continue
			}
		case 16:
			if bytes.EqualFold(k, []byte("X-Forwarded-Host")) {
				sc.flags |= hasXFH
				continue
			}
		case 17:
			if bytes.EqualFold(k, []byte("X-Forwarded-Proto")) {
				sc.flags |= hasXFP
				continue
			}
		}
		switch {
		case isHopByHopName(k):
			sc.flags |= hasHopByHop
		case isProtectedName(k):
			sc.flags |= hasProtected
		case bytes.IndexByte(k, '_') >= 0 || bytes.IndexByte(k, ' ') >= 0:
			// fasthttp's parser refuses a name with any byte outside the
			// token set but the space, which it lets through inside a
			// name; "_" is a token byte some upstream stacks read as "-".
			sc.oddName(k)
		}
	}
}

// oddName flags a name that is not a plain token of letters, digits and
// "-" (the rare case, so it may look at the name again).
func (sc *fieldScan) oddName(k []byte) {
	if !httpsyntax.IsTokenBytes(k) {
		sc.flags |= hasBadName
		return
	}
	sc.flags |= hasUnderscore
	if isProtectedTwin(k) {
		sc.flags |= hasTwin
	}
}

// first notes a field as present and keeps its value if it is the first
// of its name.
func (sc *fieldScan) first(f hdrFlags, dst *[]byte, v []byte) {
	if sc.flags&f == 0 {
		*dst = v[:len(v):len(v)]
	}
	sc.flags |= f
}

func isHopByHopName(k []byte) bool {
	switch len(k) {
	case 2:
		return bytes.EqualFold(k, []byte("Te"))
	case 7:
		return bytes.EqualFold(k, []byte("Trailer")) || bytes.EqualFold(k, []byte("Upgrade"))
	case 10:
		return bytes.EqualFold(k, []byte("Connection")) || bytes.EqualFold(k, []byte("Keep-Alive"))
	case 16:
		return bytes.EqualFold(k, []byte("Proxy-Connection"))
	case 18:
		return bytes.EqualFold(k, []byte("Proxy-Authenticate"))
	case 19:
		return bytes.EqualFold(k, []byte("Proxy-Authorization"))
	}
	return false
}

func isProtectedName(k []byte) bool {
	return (len(k) == 15 && bytes.EqualFold(k, []byte("X-Consumer-Name"))) ||
		(len(k) == 17 && bytes.EqualFold(k, []byte("X-Consumer-Groups")))
}

// isFramingHeader: a Connection token naming a framing field must not make
// us delete it (fasthttp owns framing) — "Connection: content-length" is a
// classic smuggling probe.
func isFramingHeader(tok []byte) bool {
	return bytes.EqualFold(tok, []byte("Content-Length")) ||
		bytes.EqualFold(tok, []byte("Transfer-Encoding")) ||
		bytes.EqualFold(tok, []byte("Host"))
}

const hexDigits = "0123456789abcdef"

// appendRequestID appends a random 128-bit ID in UUID v4 text form.
func appendRequestID(dst []byte) []byte {
	a, b := rand.Uint64(), rand.Uint64()
	a = (a &^ (0xf << 12)) | (4 << 12)   // version 4
	b = (b &^ (0x3 << 62)) | (0x2 << 62) // variant 10
	var t [36]byte
	putHex(t[0:8], a>>32, 4)
	t[8] = '-'
	putHex(t[9:13], a>>16, 2)
	t[13] = '-'
	putHex(t[14:18], a, 2)
	t[18] = '-'
	putHex(t[19:23], b>>48, 2)
	t[23] = '-'
	putHex(t[24:36], b, 6)
	return append(dst, t[:]...)
}

// putHex writes the low n bytes of x, big-endian, as 2n lower-case hex
// digits into dst (no bounds checks in the loop, no appends: this runs for
// every request that brings no ID or trace context).
func putHex(dst []byte, x uint64, n int) {
	_ = dst[2*n-1]
	for i := n - 1; i >= 0; i-- {
		c := byte(x)
		dst[2*i] = hexDigits[c>>4]
		dst[2*i+1] = hexDigits[c&0xf]
		x >>= 8
	}
}

// validRequestID accepts a client X-Request-Id only if it is short and made
// of visible ASCII, so it can be logged and echoed safely.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, ch := range id {
		if ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' {
			return false
		}
	}
	return true
}

// validTraceparent checks a W3C traceparent (Trace Context §3.2):
// "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>", ids not all
// zero, version ff invalid. Future versions may append fields after a '-'.
func validTraceparent(v []byte) bool {
	if len(v) < 55 || (len(v) > 55 && (v[0] == '0' && v[1] == '0' || v[55] != '-')) {
		return false
	}
	if v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return false
	}
	if v[0] == 'f' && v[1] == 'f' {
		return false
	}
	allZero := func(b []byte) bool {
		for _, c := range b {
			if c != '0' {
				return false
			}
		}
		return true
	}
	for i, c := range v[:55] {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return !allZero(v[3:35]) && !allZero(v[36:52])
}

// appendTraceparent starts a new trace: version 00, random ids, sampled
// or not (a request tracing did not pick says so to the upstream).
func appendTraceparent(dst []byte, sampled bool) []byte {
	var t [55]byte
	copy(t[:], "00-")
	putHex(t[3:19], rand.Uint64()|1, 8) // |1: never all zero
	putHex(t[19:35], rand.Uint64(), 8)
	t[35] = '-'
	putHex(t[36:52], rand.Uint64()|1, 8)
	copy(t[52:], "-01")
	if !sampled {
		t[54] = '0'
	}
	return append(dst, t[:]...)
}

// appendClientIP appends the peer IP of rc.
func appendClientIP(dst []byte, rc *fasthttp.RequestCtx) []byte {
	ip := rc.RemoteIP()
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	b, _ := ip.AppendText(dst)
	return b
}

// appendForwardedFor appends the X-Forwarded-For value of a request sent
// upstream (forwarded, or an aggregate's leg): the chain the client sent
// (prior), when its peer may hand one over (server.trusted_proxies), then
// the peer's address.
func (s *Server) appendForwardedFor(dst, prior []byte, c *sdk.Ctx) []byte {
	if len(prior) > 0 && s.peerTrusted(c) {
		dst = append(append(dst, prior...), ", "...)
	}
	return appendClientIP(dst, c.RequestCtx())
}

// forwardedProto is the X-Forwarded-Proto value: how the client connected.
func forwardedProto(rc *fasthttp.RequestCtx) []byte {
	if rc.IsTLS() {
		return valHTTPS
	}
	return valHTTP
}
