package lua

import (
	"unsafe"

	"github.com/weirgw/weir/sdk"
)

// framingHeader reports whether name is one the gateway must own: the
// message framing (RFC 9112 §6) is computed from the body actually sent, and
// a script-supplied Content-Length or Transfer-Encoding that disagrees with it
// would desynchronise the connection. The names are sdk's owned-header list.
func framingHeader(name string) bool { return sdk.FramingHeader(s2b(name)) }

// s2b views s as bytes without copying, for APIs that copy their argument
// (the result must not be written to or kept).
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// b2s views b as a string without copying; b must never be written again.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
