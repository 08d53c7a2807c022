package httpsyntax

import "github.com/weirgw/weir/internal/charset"

// ValidPath refuses what the gateway refuses in a decoded request path: it
// must start with "/" and hold no control bytes (NUL, CR, LF...) or
// backslashes — no two upstreams interpret those the same way, so they are
// a tool for desynchronising the gateway's view from the upstream's. The
// proxy and every plugin that sets a path use this one check.
func ValidPath(p []byte) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// AppendEscapedPath percent-encodes p for a request line: everything but
// RFC 3986 pchar and '/' (§3.3). p is a normalized (decoded) path, so a
// client's "%2F" reaches the upstream as "/": the upstream sees exactly
// the path the router and the plugins decided on.
func AppendEscapedPath(dst, p []byte) []byte {
	for _, c := range p {
		if pathSafe[c] {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&0xf])
		}
	}
	return dst
}

const hexUpper = "0123456789ABCDEF"

// pathSafe: RFC 3986 pchar (unreserved, sub-delims, ":" and "@") and "/".
var pathSafe = charset.AlnumAnd("-._~!$&'()*+,;=:@/")
