package jwt

import "github.com/weirgw/weir/internal/charset"

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

// b64url is the base64url alphabet (RFC 4648 §5).
var b64url = charset.AlnumAnd("-_")
