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

// Answer bodies borrowed for the time an answer is written. A proxy
// reads an upstream's body of up to MaxHeld bytes into one (BorrowBody)
// instead of into fasthttp's response body pool, which keeps only the
// sizes most answers had lately: after a spell of small answers, or
// whenever large ones are fewer than one in twenty, every large body was
// a new allocation (and the collections that follow). The connection
// the answer goes out on gives the buffer back with its next read
// (LendAnswer).

// BorrowBody returns an empty buffer of capacity MaxHeld.
func BorrowBody() *[]byte { return heldPool.Get().(*[]byte) }

// ReturnBody gives back a buffer from BorrowBody that nothing refers to
// any more.
func ReturnBody(bp *[]byte) {
	*bp = (*bp)[:0]
	heldPool.Put(bp)
}

// CanLend reports whether LendAnswer will take a buffer for rc's answer:
// its connection is a *Conn, whose next read comes after the answer.
func CanLend(rc *fasthttp.RequestCtx) bool {
	_, ok := rc.Conn().(*Conn)
	return ok
}

// LendAnswer hands bp, which holds the body of rc's answer, to rc's
// connection, which gives it back once the answer has been written (its
// next Read). A hijacked connection, or one that is not a *Conn, leaves
// it to the collector.
func LendAnswer(rc *fasthttp.RequestCtx, bp *[]byte) {
	if fc, ok := rc.Conn().(*Conn); ok && !rc.Hijacked() {
		if fc.lent != nil {
			ReturnBody(fc.lent)
		}
		fc.lent = bp
	}
}
