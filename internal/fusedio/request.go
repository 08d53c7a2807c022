package fusedio

import (
	"bytes"
	"errors"
)

// ErrBareLF is what a server connection's Read returns, instead of
// waiting, after a request whose header block ends with a blank line
// made with a bare LF and holds no CRLF CRLF.
//
// fasthttp accepts a bare-LF blank line as the end of a header block only
// once a CRLF CRLF is in its buffer (so that it never frames a stream
// differently from a peer that knows only that terminator); until then it
// waits for more bytes. A client that sent "GET / HTTP/1.1\nHost: x\n\n"
// has finished, so that wait lasted until the read timeout (30 s by
// default) and ended in a 408. Failing the read instead makes fasthttp
// refuse the request at once.
var ErrBareLF = errors.New("request header block ended by a bare LF")

// ExpectRequest tells a server's connection that the next bytes it reads
// start a request (the server waits for one: the connection is new, or
// idle after an answer). If those bytes are a header block that only a
// bare-LF blank line ends, the next Read fails with ErrBareLF rather than
// wait. Only the first read of a request is looked at: a request already
// in the server's buffer (pipelined), or typed a line at a time, still
// waits; a request that arrives whole, which is what clients send, does
// not.
func (c *Conn) ExpectRequest() { c.expect = true }

var (
	crlfcrlf = []byte("\r\n\r\n")
	lflf     = []byte("\n\n")
	lfcrlf   = []byte("\n\r\n")
)

// bareLFBlock reports whether b, the first bytes of a request, hold a
// blank line made with a bare LF and no CRLF CRLF. A header block written
// with CRLF can hold neither "\n\n" nor (without CRLF CRLF) "\n\r\n"
// before its end, so no well-formed request, however it is split into
// reads, is taken for one. The common request arrives whole and ends
// with CRLF CRLF: one comparison.
func bareLFBlock(b []byte) bool {
	if bytes.HasSuffix(b, crlfcrlf) || bytes.Contains(b, crlfcrlf) {
		return false
	}
	// Empty lines before a request line are skipped (RFC 9112 §2.2), as
	// fasthttp does: stray line ends between requests are no request.
	b = bytes.TrimLeft(b, "\r\n")
	return len(b) > 0 && (bytes.Contains(b, lflf) || bytes.Contains(b, lfcrlf))
}
