package oauth2introspection

import (
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
	if t := f.header.Token(&req.Header); t != nil {
		return t, fromHeader
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
		c.Request().Header.Del(f.header.Name())
	case fromQuery:
		c.Request().URI().QueryArgs().Del(f.query)
	}
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
