package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/httpsyntax"
)

// Wire strictness: one interpretation of a request's bytes for the
// gateway, its plugins and the upstream. What fasthttp refuses itself
// goes to protocolError; what it lets through but another HTTP stack
// could read differently is refused (or, for "_" in names, dropped) here,
// before routing. The checks ride on the header scan serve does anyway:
// a plain request pays one test of a few bits, its version and method.

// wireRefusal is a request the gateway will not serve.
type wireRefusal struct {
	status int
	msg    string
	// close: the stream after this request is in doubt (its framing, or
	// the protocol it speaks), so the connection ends with the answer.
	close bool
}

var (
	refuseBadName   = wireRefusal{fasthttp.StatusBadRequest, "invalid header field name", true}
	refuseCLTE      = wireRefusal{fasthttp.StatusBadRequest, "both content-length and transfer-encoding", true}
	refuseAuthTwice = wireRefusal{fasthttp.StatusBadRequest, "more than one authorization header", false}
	refuseVersion   = wireRefusal{fasthttp.StatusHTTPVersionNotSupported, "http version not supported", true}
	refuseConnect   = wireRefusal{fasthttp.StatusMethodNotAllowed, "method not allowed", true}
)

var http10 = []byte("HTTP/1.0")

// needsWireCheck is the cheap test: true for any request checkWire might
// refuse or change. fasthttp marks a request with both Content-Length and
// Transfer-Encoding Connection: close (and drops the Content-Length), so
// that flag is what sends such a request to the closer look; checkWire
// reads the raw header block only if the request has a body length
// (-2: neither field).
func needsWireCheck(h *fasthttp.RequestHeader, sc *fieldScan) bool {
	return sc.flags&wireFlags != 0 || h.ConnectionClose() || !h.IsHTTP11() || h.IsConnect()
}

// checkWire refuses a request the gateway reads one way and another HTTP
// stack could read another, and drops the fields whose names hold "_"
// (all of them unless server.underscores_in_headers; with it, only the
// twins of the protected fields, such as X_Consumer_Name, which stacks
// that fold "_" into "-" would take for the real field).
func (s *Server) checkWire(h *fasthttp.RequestHeader, sc *fieldScan) *wireRefusal {
	switch {
	case sc.flags&hasBadName != 0:
		return &refuseBadName
	case !h.IsHTTP11() && !bytes.Equal(h.Protocol(), http10) && !isHTTP1x(h.Protocol()):
		return &refuseVersion
	case h.IsConnect():
		// The gateway is no forward proxy: CONNECT would route by an
		// authority-form target as if it were a path.
		return &refuseConnect
	case h.ConnectionClose() && h.ContentLength() != -2 && hasCLAndTE(h.RawHeaders()):
		// RFC 9112 §6.3 lets a server read Transfer-Encoding and ignore
		// Content-Length; a front end that did the opposite would see a
		// different request boundary. Refusing leaves one reading: none.
		return &refuseCLTE
	case sc.flags&hasAuthTwice != 0:
		// Plugins verify the first; the upstream may read the last.
		return &refuseAuthTwice
	}
	if sc.flags&hasTwin != 0 || sc.flags&hasUnderscore != 0 && !s.underscores.Load() {
		dropUnderscoreNames(h, !s.underscores.Load())
	}
	return nil
}

// isHTTP1x: a later HTTP/1 minor version (HTTP/1.2) is served as the
// highest one the gateway speaks, as RFC 9112 §2.3 asks. fasthttp only
// lets "HTTP/d.d" through.
func isHTTP1x(proto []byte) bool {
	return len(proto) == 8 && bytes.HasPrefix(proto, []byte("HTTP/1."))
}

// hasCLAndTE reports whether a raw header block (fasthttp's copy of the
// field lines as received) holds both a Content-Length and a
// Transfer-Encoding field.
func hasCLAndTE(raw []byte) bool {
	var cl, te bool
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		cl = cl || httpsyntax.EqualFoldLower(name, "content-length")
		te = te || httpsyntax.EqualFoldLower(name, "transfer-encoding")
	}
	return cl && te
}

// dropUnderscoreNames deletes the fields whose names hold "_": all of
// them, or only the twins of the protected fields. nginx drops the same
// names by default (underscores_in_headers off) rather than refusing the
// request: clients send them by mistake more often than by malice.
func dropUnderscoreNames(h *fasthttp.RequestHeader, all bool) {
	// Rare path: collect, then delete (deleting while iterating is unsafe).
	var names [][]byte
	for k := range h.All() {
		if bytes.IndexByte(k, '_') >= 0 && (all || isProtectedTwin(k)) {
			names = append(names, append([]byte(nil), k...))
		}
	}
	for _, k := range names {
		h.DelBytes(k)
	}
}
