package lua

// swapBytes16 replaces every p by r in b[:len(b)&^15] (SSE2).
//
//go:noescape
func swapBytes16(b []byte, p, r byte)

// swapBytes replaces every p by r in b: sixteen bytes at a time, then
// a word at a time.
func swapBytes(b []byte, p, r byte) {
	swapBytes16(b, p, r)
	swapWords(b[len(b)&^15:], p, r)
}
