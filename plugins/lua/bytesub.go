package lua

import (
	"bytes"
	"encoding/binary"
)

// replaceByte replaces the first limit occurrences of p in b by r, in
// place, and returns how many it replaced. Unless the limit falls inside
// b, the matches are counted (vectorized) and replaced eight bytes at a
// time: a body rewritten byte for byte
// (the bench's gsub("x", "y") over 1 KiB of x) costs about half an
// instruction a byte, where a loop testing each byte cost twelve.
func replaceByte(b []byte, p, r byte, limit int) int {
	n := bytes.Count(b, []byte{p}) // vectorized
	if n > limit {
		return replaceByteLoop(b, p, r, limit)
	}
	if n == 0 {
		return 0
	}
	swapBytes(b, p, r)
	return n
}

// swapWords replaces every p by r in b, eight bytes at a time.
func swapWords(b []byte, p, r byte) {
	pp, flip := ones*uint64(p), uint64(p^r)
	for len(b) >= 8 {
		le.PutUint64(b, swapWord(le.Uint64(b), pp, flip))
		b = b[8:]
	}
	replaceByteLoop(b, p, r, len(b))
}

const (
	ones = 0x0101010101010101
	lo7  = 0x7f7f7f7f7f7f7f7f
)

var le = binary.LittleEndian

// swapWord is w with each byte equal to p's (pp: p in every byte) XORed
// with flip (p^r), which makes it r.
func swapWord(w, pp, flip uint64) uint64 {
	x := w ^ pp // zero bytes where w holds p
	// The high bit of each byte of hit is set exactly where x's byte is
	// zero (no carry crosses bytes: the low 7 bits are added apart from
	// the high one).
	hit := ^((x&lo7 + lo7) | x | lo7)
	// hit>>7 is 1 in those bytes: times p^r (at most 255) is p^r there,
	// no carry reaching the next byte.
	return w ^ (hit >> 7 * flip)
}

// replaceByteLoop is replaceByte one byte at a time.
func replaceByteLoop(b []byte, p, r byte, limit int) int {
	n := 0
	for j := 0; j < len(b) && n < limit; j++ {
		if b[j] == p {
			b[j] = r
			n++
		}
	}
	return n
}
