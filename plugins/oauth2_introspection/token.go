package oauth2introspection

import "github.com/weirgw/weir/internal/charset"

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

var b64tokenChar = charset.AlnumAnd("-._~+/")
