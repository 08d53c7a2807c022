package charset

import (
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
