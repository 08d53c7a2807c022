package sdk

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

var contentTypeJSON = []byte("application/json")

// WriteError replaces rc's response with the gateway's JSON error,
// {"status":429,"error":"rate limit exceeded","request_id":"..."}
// (SPEC.md, wire behaviour). It does not allocate once rc's buffers are
// warm.
func WriteError(rc *fasthttp.RequestCtx, status int, msg string, requestID []byte) {
	resp := &rc.Response
	resp.ResetBody()
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
