package transport

import (
	"bytes"
	"errors"
	"io"
)

// headerSplice sits between a connection's bufio.Writer and the
// connection. Armed with extra header lines, it inserts them before the
// blank line that ends the request header, then passes bytes through.
//
// fasthttp writes a request header with one Write to the bufio.Writer,
// which is empty when a request starts (every round trip ends with a
// Flush, and a failed one discards the connection), so the first Write
// that reaches the splice holds the whole header: either the buffered
// bytes when they fill or flush, or, for a header larger than the buffer,
// the header itself, which bufio passes straight through.
//
// With bodyLen, the length of a body in memory, it first looks where the
// header ends when the write holds the whole request (the usual case: a
// request is written and flushed in one piece), and searches only when it
// does not.
//
// It also notes whether a write towards the upstream failed (failed):
// when fasthttp's request Write fails and none did, the error came from
// reading the body's source, the client (ClientBodyError).
type headerSplice struct {
	w       io.Writer
	extra   []byte
	bodyLen int // -1: a streamed or chunked body, or unknown
	buf     []byte
	failed  bool
}

var (
	headerEnd = []byte("\r\n\r\n")
	// errNoHeaderEnd would mean the premise above broke; nothing is sent.
	errNoHeaderEnd = errors.New("transport: request header end not found in its first write")
)

func (s *headerSplice) Write(p []byte) (int, error) {
	if len(s.extra) == 0 {
		n, err := s.w.Write(p)
		if err != nil {
			s.failed = true
		}
		return n, err
	}
	// A header holds no blank line before its end, so finding one at the
	// end of p less the body means p is the whole request.
	i := len(p) - s.bodyLen - len(headerEnd)
	if s.bodyLen < 0 || i < 0 || string(p[i:i+len(headerEnd)]) != string(headerEnd) {
		if i = bytes.Index(p, headerEnd); i < 0 {
			s.extra = nil
			s.failed = true
			return 0, errNoHeaderEnd
		}
	}
	i += 2 // after the last field's CRLF, before the blank line
	s.buf = append(append(append(s.buf[:0], p[:i]...), s.extra...), p[i:]...)
	s.extra = nil
	if _, err := s.w.Write(s.buf); err != nil {
		s.failed = true
		return 0, err
	}
	return len(p), nil
}
