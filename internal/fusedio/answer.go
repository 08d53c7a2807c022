package fusedio

import "github.com/valyala/fasthttp"

// HoldAnswer lets a fasthttp server's keep-alive answer whose body is in
// memory wait for the read of the next request on its connection, which
// sends it. A streamed body is written as it arrives, and a connection
// that closes (or an HTTP/1.0 client) has no next read. On a connection
// that is not a *Conn it does nothing.
func HoldAnswer(rc *fasthttp.RequestCtx) {
	if rc.Response.IsBodyStream() || rc.Response.ConnectionClose() ||
		!rc.Request.Header.IsHTTP11() || rc.Request.Header.ConnectionClose() {
		return
	}
	if fc, ok := rc.Conn().(*Conn); ok {
		fc.Hold()
	}
}
