package lua

// swapBytes replaces every p by r in b, a word at a time.
func swapBytes(b []byte, p, r byte) { swapWords(b, p, r) }
