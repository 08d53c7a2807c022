// Package charset builds the byte-class tables that the plugins' scanners
// index once per byte of client input (tokens, header names, paths): a
// table lookup is a single load, with no branches on the byte's value.
package charset

// AlnumAnd returns the table of ALPHA / DIGIT (RFC 5234 appendix B.1)
// plus the bytes of extra: t[c] reports whether c is in the class.
// Tables are built once, into package variables.
func AlnumAnd(extra string) (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	return t
}

// IsDigit reports whether c is DIGIT (RFC 5234 appendix B.1).
func IsDigit(c byte) bool { return '0' <= c && c <= '9' }

// IsHex reports whether c is HEXDIG, in either case (RFC 5234 appendix
// B.1 lists upper case; URIs, JSON and HTTP accept both).
func IsHex(c byte) bool { return IsDigit(c) || ('a' <= c|0x20 && c|0x20 <= 'f') }
