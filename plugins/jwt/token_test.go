package jwt

import "testing"

// wellFormedByByte is wellFormed as it was written first, one byte at a
// time: the reference for TestWellFormedSameAsByByte.
func wellFormedByByte(tok []byte) bool {
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

// TestWellFormedSameAsByByte: every string of up to 8 bytes over an
// alphabet of a base64url letter, a dot, padding and a space gets the
// same verdict as the byte-by-byte check.
func TestWellFormedSameAsByByte(t *testing.T) {
	alphabet := []byte{'a', '.', '=', ' '}
	var tok []byte
	var walk func(n int)
	checked := 0
	walk = func(n int) {
		if got, want := wellFormed(tok), wellFormedByByte(tok); got != want {
			t.Fatalf("wellFormed(%q) = %v, want %v", tok, got, want)
		}
		checked++
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			tok = append(tok, c)
			walk(n - 1)
			tok = tok[:len(tok)-1]
		}
	}
	walk(8)
	if checked < 80000 {
		t.Fatalf("checked %d strings", checked)
	}
}
