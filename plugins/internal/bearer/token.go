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
	"github.com/weirgw/weir/internal/httpsyntax"
)

// Source says where a request's token came from, for hide_credentials.
type Source uint8

const (
	FromNone Source = iota
	FromHeader
	FromCookie
	FromQuery
)

// Sources are the places a plugin instance reads its token from, tried in
// this order, each optional: a header (RFC 6750 §2.1), a cookie, a query
// parameter (RFC 6750 §2.3). It is immutable.
type Sources struct {
	header string
	// schemeRequired: Authorization must use the Bearer scheme; any
	// other header may carry the bare token.
	schemeRequired bool
	cookie         string
	query          string
}

// NewSources returns the token sources of an instance; "" turns a source
// off. For Authorization the value must be `Bearer <token>` (RFC 6750
// §2.1); any other header carries the bare token, with an optional
// "Bearer " prefix. A cookie or query parameter carries the bare token.
func NewSources(header, cookie, query string) Sources {
	return Sources{
		header:         header,
		schemeRequired: strings.EqualFold(header, "Authorization"),
		cookie:         cookie,
		query:          query,
	}
}

// Token returns the request's token and where it came from: the first
// source that carries a non-empty token. The token is a view into req that
// must not be kept after the request.
func (s *Sources) Token(req *fasthttp.Request) ([]byte, Source) {
	if s.header != "" {
		if t := Token(req.Header.Peek(s.header), s.schemeRequired); t != nil {
			return t, FromHeader
		}
	}
	if s.cookie != "" {
		if v := req.Header.Cookie(s.cookie); len(v) > 0 {
			return v, FromCookie
		}
	}
	if s.query != "" {
		if v := req.URI().QueryArgs().Peek(s.query); len(v) > 0 {
			return v, FromQuery
		}
	}
	return nil, FromNone
}

// Hide removes the token from where it came from, so that it does not
// reach the upstream (hide_credentials).
func (s *Sources) Hide(req *fasthttp.Request, src Source) {
	switch src {
	case FromHeader:
		req.Header.Del(s.header)
	case FromCookie:
		req.Header.DelCookie(s.cookie)
	case FromQuery:
		req.URI().QueryArgs().Del(s.query)
	}
}

// Token returns the token of an RFC 6750 §2.1 credentials value,
// `Bearer 1*SP b64token`, with the scheme matched case-insensitively (RFC
// 9110 §11.1) and surrounding spaces and tabs trimmed. When schemeRequired
// is false (a header other than Authorization) the scheme is optional. It
// returns nil when v is not a bearer credential (Basic, a bare "Bearer",
// nothing). The result is a view into v.
func Token(v []byte, schemeRequired bool) []byte {
	const scheme = "bearer"
	if len(v) > len(scheme) && (v[len(scheme)] == ' ' || v[len(scheme)] == '\t') && httpsyntax.EqualFoldLower(v[:len(scheme)], scheme) {
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
