package jwt

import (
	"bytes"

	"github.com/weirgw/weir/internal/charset"
)

// wellFormed is the shape check run before any parsing, in time linear in
// len(tok) and without allocating: a compact JWS (RFC 7515 §7.1) is three
// non-empty base64url segments (RFC 7515 §2: no padding) joined by exactly
// two dots. Thousands of dots, spaces, padding or any other byte end here,
// whatever the JOSE library would have done with them.
func wellFormed(tok []byte) bool {
	// Dots are found with IndexByte (vectorized), so the per-byte loop is
	// only the alphabet test: a dot is not in it, which refuses a third.
	for seg := 0; seg < 3; seg++ {
		end := len(tok)
		if seg < 2 {
			if end = bytes.IndexByte(tok, '.'); end < 0 {
				return false
			}
		}
		if end == 0 {
			return false
		}
		for _, ch := range tok[:end] {
			if !b64url[ch] {
				return false
			}
		}
		if seg < 2 {
			tok = tok[end+1:]
		}
	}
	return true
}

// b64url is the base64url alphabet (RFC 4648 §5).
var b64url = charset.AlnumAnd("-_")
