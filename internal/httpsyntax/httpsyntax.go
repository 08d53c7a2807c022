// Package httpsyntax holds the few HTTP syntax checks every part of Weir
// needs (config validation, the router, plugins, the Lua and WASM host
// APIs), so there is one definition of a token, of a safe field value and
// of a request path the gateway accepts and sends upstream.
package httpsyntax

import "github.com/weirgw/weir/internal/charset"

// tchar is RFC 9110 §5.6.2: the characters of a token.
var tchar = charset.AlnumAnd("!#$%&'*+-.^_`|~")

// IsTchar reports whether c may appear in a token.
func IsTchar(c byte) bool { return tchar[c] }

// IsToken reports whether s is a token (1*tchar): the syntax of field
// names, methods and cookie names.
func IsToken(s string) bool {
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

// IsTokenBytes is IsToken for a byte slice.
func IsTokenBytes(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// ValidFieldValue refuses the control characters RFC 9110 §5.5 does not
// allow in a field value (everything below 0x20 but HTAB, and DEL): CR
// and LF would end the field line and smuggle another, NUL truncates it
// in many servers.
func ValidFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// ValidFieldValueBytes is ValidFieldValue for a byte slice.
func ValidFieldValueBytes(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// EqualFoldLower compares b, in any ASCII case, with lower, which must be
// lower case already (a constant such as "content-length").
func EqualFoldLower(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// EqualFold compares two ASCII names (header field names, tokens) without
// regard to case; unlike bytes.EqualFold it folds ASCII letters only.
func EqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
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
