package jwt

import (
	"bytes"

	"github.com/weirgw/weir/sdk"
)

// tokenSource says where a request's token came from, for hide_credentials.
type tokenSource uint8

const (
	fromNone tokenSource = iota
	fromHeader
	fromCookie
)

// extract returns the request's token, a view into the request headers
// that must not be kept, and where it came from.
func (f *filter) extract(c *sdk.Ctx) ([]byte, tokenSource) {
	h := &c.Request().Header
	if f.header != "" {
		if v := h.Peek(f.header); len(v) > 0 {
			if t := bearer(v, f.headerIsAuthorization); t != nil {
				return t, fromHeader
			}
		}
	}
	if f.cookie != "" {
		if v := h.Cookie(f.cookie); len(v) > 0 {
			return v, fromCookie
		}
	}
	return nil, fromNone
}

// bearer returns the token of an RFC 6750 §2.1 credentials value,
// `Bearer 1*SP b64token`, with the scheme matched case-insensitively (RFC
// 9110 §11.1). For a header other than Authorization the scheme is
// optional. It returns nil when the value is not a bearer credential
// (Basic, a bare "Bearer", ...).
func bearer(v []byte, required bool) []byte {
	const scheme = "bearer"
	if len(v) > len(scheme) && (v[len(scheme)] == ' ' || v[len(scheme)] == '\t') && asciiEqualFold(v[:len(scheme)], scheme) {
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

// wellFormed is the shape check run before any parsing, in time linear in
// len(tok) and without allocating: a compact JWS (RFC 7515 §7.1) is three
// non-empty base64url segments (RFC 7515 §2: no padding) joined by exactly
// two dots. Thousands of dots, spaces, padding or any other byte end here,
// whatever the JOSE library would have done with them.
func wellFormed(tok []byte) bool {
	dots, seg := 0, 0
	for _, ch := range tok {
		if ch == '.' {
			if seg == 0 || dots == 2 {
				return false
			}
			dots++
			seg = 0
			continue
		}
		if !b64url[ch] {
			return false
		}
		seg++
	}
	return dots == 2 && seg > 0
}

var b64url = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['_'] = true, true
	return t
}()
