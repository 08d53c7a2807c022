package lua

import "unsafe"

// tchar marks the bytes allowed in a header name: a token (RFC 9110 §5.1,
// https://www.rfc-editor.org/rfc/rfc9110#section-5.1, and §5.6.2).
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validHeaderName reports whether s is a token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s may be sent as a field value. RFC 9110
// §5.5 (https://www.rfc-editor.org/rfc/rfc9110#section-5.5) makes CR, LF and
// NUL fatal (they would split or truncate the header: response splitting,
// request smuggling); the other control characters are refused too, as the
// grammar (VCHAR, obs-text, SP, HTAB) does not allow them either.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// framingHeader reports whether name is one the gateway must own: the
// message framing (RFC 9112 §6) is computed from the body actually sent, and
// a script-supplied Content-Length or Transfer-Encoding that disagrees with it
// would desynchronise the connection.
func framingHeader(name string) bool {
	return equalFold(name, "Content-Length") || equalFold(name, "Transfer-Encoding")
}

// equalFold is an ASCII case-insensitive comparison (header names are
// ASCII tokens).
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// s2b views s as bytes without copying, for APIs that copy their argument
// (the result must not be written to or kept).
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
