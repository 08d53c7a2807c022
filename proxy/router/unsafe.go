package router

import "unsafe"

// b2s views b as a string without copying; the result must not outlive
// b's contents and b must not change while the string is in use. Only for
// lookups that do not keep the string.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
