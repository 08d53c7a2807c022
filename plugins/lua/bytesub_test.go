package lua

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestReplaceByte checks the block and word replacements against the
// byte loop on random bodies over a small alphabet (dense matches, bytes
// next to the pattern byte, 0x00 and 0x80 / 0xff neighbours whose
// carries a word trick could get wrong), every length to 80 and a few
// longer, and limits falling inside, at and past a word.
func TestReplaceByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var sizes []int
	for size := 0; size <= 80; size++ {
		sizes = append(sizes, size)
	}
	sizes = append(sizes, 1024, 1024+15, 4096+7)
	alphabet := []byte{'x', 'y', 'w', 0, 0x80, 0xff, 0x7f, 0x01}
	for _, pr := range [][2]byte{{'x', 'y'}, {0, 'a'}, {0x80, 0x7f}, {0xff, 0}, {'x', 'x'}, {0x7f, 0x80}} {
		for _, size := range sizes {
			for range 30 {
				b := make([]byte, size)
				for i := range b {
					b[i] = alphabet[rng.IntN(len(alphabet))]
				}
				for _, limit := range []int{0, 1, 3, 7, 8, 9, 17, size, 1 << 30} {
					got, want := bytes.Clone(b), bytes.Clone(b)
					gn, wn := replaceByte(got, pr[0], pr[1], limit), replaceByteLoop(want, pr[0], pr[1], limit)
					if gn != wn || !bytes.Equal(got, want) {
						t.Fatalf("replaceByte(%q, %q, %q, %d) = %d %q, want %d %q", b, pr[0], pr[1], limit, gn, got, wn, want)
					}
				}
				// The word loop alone.
				got, want := bytes.Clone(b), bytes.Clone(b)
				swapWords(got, pr[0], pr[1])
				replaceByteLoop(want, pr[0], pr[1], len(want))
				if !bytes.Equal(got, want) {
					t.Fatalf("swapWords(%q, %q, %q) = %q, want %q", b, pr[0], pr[1], got, want)
				}
			}
		}
	}
}
