package charset

import (
	"strconv"
	"strings"
	"testing"
)

func TestAlnumAnd(t *testing.T) {
	for _, extra := range []string{"", "-_", "-._~+/", "!#$%&'*+-.^_`|~"} {
		tab := AlnumAnd(extra)
		for c := 0; c < 256; c++ {
			want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
				strings.IndexByte(extra, byte(c)) >= 0
			if tab[c] != want {
				t.Errorf("AlnumAnd(%q)[%q] = %v, want %v", extra, byte(c), tab[c], want)
			}
		}
	}
}

// TestDigitAndHex checks every byte against the strconv reading.
func TestDigitAndHex(t *testing.T) {
	for c := 0; c < 256; c++ {
		_, errD := strconv.ParseUint(string(rune(c)), 10, 8)
		_, errH := strconv.ParseUint(string(rune(c)), 16, 8)
		if c >= 0x80 {
			errD, errH = strconv.ErrSyntax, strconv.ErrSyntax // multi-byte runes
		}
		if IsDigit(byte(c)) != (errD == nil) || IsHex(byte(c)) != (errH == nil) {
			t.Fatalf("byte %#x: digit %v hex %v", c, IsDigit(byte(c)), IsHex(byte(c)))
		}
	}
}
