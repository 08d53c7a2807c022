package sdk

import (
	"errors"
	"os"
	"strconv"

	"github.com/valyala/fasthttp"
)

var contentTypeJSON = []byte("application/json")

// WriteError replaces rc's response with the gateway's JSON error,
// {"status":429,"error":"rate limit exceeded","request_id":"..."}
// (README.md, "Whose fault"). It does not allocate once rc's buffers are
// warm.
//
// The whole response is replaced, header included: an error written after
// an upstream answered (a response filter failing, a body that could not
// be read) must not carry the upstream's fields, nor its reason phrase
// ("502 OK"): fasthttp writes a status message it parsed in place of the
// standard one for the code. Only Connection: close survives, since it is
// about the client's connection, not the answer. Header fields a filter
// wants on every answer go through Ctx.SetResponseHeader, applied after.
func WriteError(rc *fasthttp.RequestCtx, status int, msg string, requestID []byte) {
	resp := &rc.Response
	resp.ResetBody()
	closeConn := resp.Header.ConnectionClose()
	resp.Header.Reset()
	if closeConn {
		resp.Header.SetConnectionClose()
	}
	resp.SetStatusCode(status)
	resp.Header.SetContentTypeBytes(contentTypeJSON)
	resp.Header.Set("Cache-Control", "no-store")
	var stack [256]byte
	b := append(stack[:0], `{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"error":`...)
	b = AppendJSONString(b, msg)
	b = append(b, `,"request_id":`...)
	b = AppendJSONString(b, b2s(requestID))
	b = append(b, '}')
	resp.AppendBody(b) // copies into the response's pooled buffer
}

// ClientBodyStatus maps a failure to read the request body from the client
// to the gateway's answer to that client: 413 past a size limit
// (ErrBodyTooLarge, fasthttp's too), 408 when the client's read timeout
// passed mid-body, 400 for the rest (chunked framing fasthttp refuses, a
// body cut short by the client closing). Whoever reads the client's body
// stream (the proxy forwarding it, a plugin buffering it) uses it, so the
// client gets the same answer whichever read fails. None of these is the
// upstream's fault: a try that fails this way says nothing about its
// target.
func ClientBodyStatus(err error) (status int, msg string) {
	switch {
	case errors.Is(err, ErrBodyTooLarge) || errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, "request body too large"
	case isTimeout(err):
		return fasthttp.StatusRequestTimeout, "request body timed out"
	}
	return fasthttp.StatusBadRequest, "malformed or incomplete request body"
}

// isTimeout reports a deadline expiry, as os.ErrDeadlineExceeded or a
// net.Error that says so.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// AppendJSONString appends s as a JSON string literal, escaping what JSON
// requires plus <, > and & so the output is safe in HTML contexts.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '"' || ch == '\\':
			dst = append(dst, '\\', ch)
		case ch == '\n':
			dst = append(dst, '\\', 'n')
		case ch == '\r':
			dst = append(dst, '\\', 'r')
		case ch == '\t':
			dst = append(dst, '\\', 't')
		case ch < 0x20 || ch == '<' || ch == '>' || ch == '&' || ch == 0x7f:
			dst = append(dst, '\\', 'u', '0', '0', hex[ch>>4], hex[ch&0xf])
		default:
			dst = append(dst, ch)
		}
	}
	return append(dst, '"')
}
