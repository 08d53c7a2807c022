package oauth2introspection

import (
	"bytes"

	"github.com/weirgw/weir/sdk"
)

type tokenSource uint8

const (
	fromNone tokenSource = iota
	fromHeader
	fromQuery
)

// extract returns the request's token (a view that must not be kept) and
// where it came from: the header first, then the query parameter.
func (f *filter) extract(c *sdk.Ctx) ([]byte, tokenSource) {
	req := c.Request()
	if f.header != "" {
		if v := req.Header.Peek(f.header); len(v) > 0 {
			if t := bearer(v, f.headerIsAuthorization); t != nil {
				return t, fromHeader
			}
		}
	}
	if f.query != "" {
		if v := req.URI().QueryArgs().Peek(f.query); len(v) > 0 {
			return v, fromQuery
		}
	}
	return nil, fromNone
}

func (f *filter) hideToken(c *sdk.Ctx, src tokenSource) {
	switch src {
	case fromHeader:
		c.Request().Header.Del(f.header)
	case fromQuery:
		c.Request().URI().QueryArgs().Del(f.query)
	}
}

// bearer returns the token of `Bearer 1*SP b64token` (RFC 6750 §2.1), the
// scheme matched case-insensitively; for headers other than Authorization
// the scheme is optional. nil when v is not a bearer credential.
func bearer(v []byte, required bool) []byte {
	const scheme = "bearer"
	if len(v) > len(scheme) && (v[len(scheme)] == ' ' || v[len(scheme)] == '\t') && equalFold(v[:len(scheme)], scheme) {
		v = v[len(scheme):]
	} else if required {
		return nil
	}
	v = bytes.Trim(v, " \t")
	if len(v) == 0 {
		return nil
	}
	return v
}

func equalFold(b []byte, lower string) bool {
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != lower[i] {
			return false
		}
	}
	return len(b) == len(lower)
}

// b64token reports whether tok matches RFC 6750 §2.1's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// Anything else is refused before it reaches the authorization server.
func b64token(tok []byte) bool {
	i := 0
	for i < len(tok) && b64tokenChar[tok[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(tok) && tok[i] == '=' {
		i++
	}
	return i == len(tok)
}

var b64tokenChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()
