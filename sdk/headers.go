package sdk

import (
	"strings"

	"github.com/weirgw/weir/internal/httpsyntax"
)

// OwnedHeader is a header field the gateway owns: a plugin may not set,
// rename, remove or fill it from data (request_transformer,
// response_transformer, jwt's claims_to_headers), because the gateway
// writes it itself or removes it on the way.
type OwnedHeader struct {
	Name string // canonical ("X-Request-Id")
	// Why tells the operator, in a config error, who writes the field.
	Why string
	// RequestOnly: owned on requests; a response may carry it freely.
	RequestOnly bool
	// Framing: it delimits the message (RFC 9112 §6). Scripts and guests
	// (lua, wasm) may not write these at run time either: the body
	// actually sent decides them.
	Framing bool
}

const (
	whyHop   = "it is hop-by-hop (RFC 9110 §7.6.1) and the gateway removes it on both sides"
	whySetFw = "the gateway sets it on every forwarded request"
	whyCons  = "the gateway sets it from the authenticated consumer and removes copies sent by clients"
)

// ownedHeaders is the one list of the fields the gateway owns. Every
// plugin that writes headers from config or data refuses these names
// (TestEveryPluginRefusesEveryOwnedHeader, in plugins/).
var ownedHeaders = [...]OwnedHeader{
	{Name: "Connection", Why: whyHop},
	{Name: "Keep-Alive", Why: whyHop},
	{Name: "Proxy-Connection", Why: whyHop},
	{Name: "Te", Why: whyHop},
	{Name: "Trailer", Why: whyHop},
	{Name: "Upgrade", Why: whyHop},
	{Name: "Proxy-Authenticate", Why: "it is meant for the proxy (RFC 9110 §11.7.1) and the gateway removes it on both sides"},
	{Name: "Proxy-Authorization", Why: "it is meant for the proxy (RFC 9110 §11.7.2) and the gateway removes it on both sides"},
	{Name: "Transfer-Encoding", Why: "it is message framing (RFC 9112 §6.1), which the gateway writes for each connection", Framing: true},
	{Name: "Content-Length", Why: "it is message framing (RFC 9112 §6.2); the gateway computes it from the body", Framing: true},
	{Name: "Host", Why: "the gateway sends the target's host, or the client's with the route's preserve_host: true"},
	{Name: "X-Request-Id", Why: "it is the gateway's request ID (the client's or a generated one), used in logs and echoed on the response"},
	{Name: "X-Consumer-Name", Why: whyCons, RequestOnly: true},
	{Name: "X-Consumer-Groups", Why: whyCons, RequestOnly: true},
	{Name: "X-Forwarded-Proto", Why: whySetFw, RequestOnly: true},
	{Name: "X-Forwarded-Host", Why: whySetFw, RequestOnly: true},
	{Name: "Traceparent", Why: "the gateway continues the W3C trace context (a child of the client's, or a new trace) on every forwarded request", RequestOnly: true},
}

// OwnedHeaders returns the list of the fields the gateway owns (shared:
// do not modify).
func OwnedHeaders() []OwnedHeader { return ownedHeaders[:] }

// HeaderOwned reports whether the gateway owns the field name (any case)
// on a request (response false) or a response, and why. For config time:
// it compares case-insensitively against the whole list.
func HeaderOwned(name string, response bool) (why string, owned bool) {
	for i := range ownedHeaders {
		h := &ownedHeaders[i]
		if strings.EqualFold(name, h.Name) && !(response && h.RequestOnly) {
			return h.Why, true
		}
	}
	return "", false
}

// FramingHeader reports whether name (any case) is Content-Length or
// Transfer-Encoding, the owned fields a script or guest may not write at
// run time. It does not allocate.
func FramingHeader(name []byte) bool {
	switch len(name) {
	case len("content-length"):
		return httpsyntax.EqualFoldLower(name, "content-length")
	case len("transfer-encoding"):
		return httpsyntax.EqualFoldLower(name, "transfer-encoding")
	}
	return false
}
