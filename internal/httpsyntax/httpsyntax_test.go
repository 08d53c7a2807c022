package httpsyntax

import (
	"strings"
	"testing"
)

func TestTokenEveryByte(t *testing.T) {
	const extra = "!#$%&'*+-.^_`|~"
	for c := 0; c < 256; c++ {
		b := byte(c)
		want := b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || strings.IndexByte(extra, b) >= 0
		if IsTchar(b) != want || IsToken(string([]byte{b})) != want || IsTokenBytes([]byte{b}) != want {
			t.Errorf("byte %#x: tchar %v, want %v", c, IsTchar(b), want)
		}
	}
	if IsToken("") || IsTokenBytes(nil) {
		t.Error("the empty string is not a token")
	}
	if !IsToken("X-Api-Key") || IsToken("X Api") || IsToken("a:b") {
		t.Error("token cases")
	}
}

func TestFieldValue(t *testing.T) {
	for v, want := range map[string]bool{
		"plain": true, "tab\there": true, "ü obs-text": true, "": true,
		"cr\rx": false, "lf\nx": false, "nul\x00": false, "del\x7f": false, "bell\a": false,
	} {
		if ValidFieldValue(v) != want || ValidFieldValueBytes([]byte(v)) != want {
			t.Errorf("%q: want %v", v, want)
		}
	}
}

func TestEqualFoldLower(t *testing.T) {
	if !EqualFoldLower([]byte("Content-Length"), "content-length") || !EqualFoldLower([]byte("x"), "x") {
		t.Error("should match")
	}
	if EqualFoldLower([]byte("Content-Lengths"), "content-length") || EqualFoldLower([]byte("Content_Length"), "content-length") {
		t.Error("should not match")
	}
}
