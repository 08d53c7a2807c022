// Package bearer is what the token plugins (jwt, oauth2_introspection)
// share about OAuth 2.0 bearer tokens (RFC 6750): reading the token from a
// request header (§2.1) and refusing a request with the gateway's JSON
// error plus a WWW-Authenticate challenge (§3).
//
// Everything is prepared when the config loads; reading a token and
// refusing a request do not allocate.
package bearer

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"
)

// Header is the request header a plugin instance reads its token from.
type Header struct {
	name string
	// schemeRequired: Authorization must use the Bearer scheme; any
	// other header may carry the bare token.
	schemeRequired bool
}

// NewHeader returns the token header name; "" reads no header. For
// Authorization the value must be `Bearer <token>` (RFC 6750 §2.1); any
// other header carries the bare token, with an optional "Bearer " prefix.
func NewHeader(name string) Header {
	return Header{name: name, schemeRequired: strings.EqualFold(name, "Authorization")}
}

// Name is the header's name as configured ("" when no header is read).
func (h Header) Name() string { return h.name }

// Token returns the token the request headers carry in h, or nil (no
// header configured, the field absent or empty, another scheme). The
// result is a view into rh that must not be kept after the request.
func (h Header) Token(rh *fasthttp.RequestHeader) []byte {
	if h.name == "" {
		return nil
	}
	return Token(rh.Peek(h.name), h.schemeRequired)
}

// Token returns the token of an RFC 6750 §2.1 credentials value,
// `Bearer 1*SP b64token`, with the scheme matched case-insensitively (RFC
// 9110 §11.1) and surrounding spaces and tabs trimmed. When schemeRequired
// is false (a header other than Authorization) the scheme is optional. It
// returns nil when v is not a bearer credential (Basic, a bare "Bearer",
// nothing). The result is a view into v.
func Token(v []byte, schemeRequired bool) []byte {
	const scheme = "bearer"
	if len(v) > len(scheme) && (v[len(scheme)] == ' ' || v[len(scheme)] == '\t') && asciiEqualFold(v[:len(scheme)], scheme) {
		v = v[len(scheme):]
	} else if schemeRequired {
		return nil
	}
	v = bytes.Trim(v, " \t")
	if len(v) == 0 {
		return nil
	}
	return v
}

// asciiEqualFold reports whether b, ASCII letters folded to lower case,
// is lower (which is already lower case).
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != lower[i] {
			return false
		}
	}
	return true
}
