package proxy

import "unsafe"

// b2s converts without copying; the result must not outlive b's contents.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
