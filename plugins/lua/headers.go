package lua

import "unsafe"

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
