package transform

import "unsafe"

// s2b views s as bytes without copying; the result must not be written.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// noCopy makes `go vet` report copies of pooled types.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
