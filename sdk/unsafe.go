package sdk

import "unsafe"

// b2s converts without copying; the result must not outlive b's contents.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// B2S is b2s for the proxy and plugins: a zero-copy view of b as a string
// that must not be kept past the lifetime of b's contents.
func B2S(b []byte) string { return b2s(b) }
