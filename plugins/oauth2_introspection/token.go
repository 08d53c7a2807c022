package oauth2introspection

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
