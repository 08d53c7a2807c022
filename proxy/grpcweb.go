package proxy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/proxy/transport"
)

// gRPC-Web (README: "gRPC-Web"): browsers cannot read HTTP/2 trailers, so
// gRPC-Web carries a call over HTTP/1.1 or HTTP/2 with the trailers moved
// into the body, as a last frame whose flag byte is 0x80. A call whose
// Content-Type is application/grpc-web (+proto, ...) or
// application/grpc-web-text (the same, base64) going to an HTTP/2 target
// (grpc://, grpcs://) is translated: the upstream sees plain gRPC, and its
// answer goes back as gRPC-Web, streamed as it comes. To an HTTP/1.1
// target (a service that speaks gRPC-Web itself) the call goes untouched.
// An answer the gateway makes itself is a gRPC status in the headers
// (trailers-only), whichever target the route has.

// grpcWebMode is the flavour of a gRPC-Web call: 0 for none.
type grpcWebMode uint8

const (
	grpcWebBinary grpcWebMode = 1 + iota // application/grpc-web[+proto]
	grpcWebText                          // application/grpc-web-text[+proto]: base64
)

const (
	ctGRPC        = "application/grpc"
	ctGRPCWeb     = "application/grpc-web"
	ctGRPCWebText = "application/grpc-web-text"
)

// grpcWebOf is the gRPC-Web flavour a Content-Type names, 0 for none.
func grpcWebOf(ct []byte) grpcWebMode {
	if !bytes.HasPrefix(ct, []byte(ctGRPCWeb)) {
		return 0
	}
	mode, rest := grpcWebBinary, ct[len(ctGRPCWeb):]
	if bytes.HasPrefix(rest, []byte("-text")) {
		mode, rest = grpcWebText, rest[len("-text"):]
	}
	if len(rest) > 0 && rest[0] != '+' && rest[0] != ';' {
		return 0
	}
	return mode
}

// errGRPCWebText: a grpc-web-text body that is not base64.
var errGRPCWebText = errors.New("grpc-web-text body is not base64")

// grpcWebToGRPC makes a gRPC-Web call a gRPC one for an HTTP/2 target:
// its Content-Type, and a -text body decoded. A malformed -text body is a
// ClientBodyError (the client's 400, nothing counted against the target).
func grpcWebToGRPC(req *fasthttp.Request, mode grpcWebMode) error {
	ct := req.Header.ContentType()
	skip := len(ctGRPCWeb)
	if mode == grpcWebText {
		skip = len(ctGRPCWebText)
	}
	req.Header.SetContentType(ctGRPC + string(ct[skip:]))
	if mode != grpcWebText {
		return nil
	}
	if req.IsBodyStream() {
		req.SetBodyStream(&grpcWebTextBody{r: req.BodyStream()}, -1)
		return nil
	}
	out, rest, err := appendTextDecoded(nil, req.Body())
	if err != nil || len(rest) > 0 {
		return &transport.ClientBodyError{Err: errGRPCWebText}
	}
	req.SetBody(out)
	return nil
}

// appendTextDecoded decodes the whole 4-character quanta of src onto dst
// and returns the incomplete tail. Each padded piece is decoded on its
// own: a client may send several, one after another.
func appendTextDecoded(dst, src []byte) (out, rest []byte, err error) {
	n := len(src) &^ 3
	for i := 0; i < n; {
		j := i
		for j < n {
			j += 4
			if src[j-1] == '=' {
				break
			}
		}
		if dst, err = base64.StdEncoding.AppendDecode(dst, src[i:j]); err != nil {
			return dst, nil, errGRPCWebText
		}
		i = j
	}
	return dst, src[n:], nil
}

// grpcWebTextBody decodes a streamed grpc-web-text request body.
type grpcWebTextBody struct {
	r   io.Reader
	in  []byte // characters read, not yet decoded (an incomplete quantum)
	out []byte // decoded, not yet read
	off int
	err error
}

func (t *grpcWebTextBody) Read(p []byte) (int, error) {
	for t.off == len(t.out) {
		if t.err != nil {
			if t.err == io.EOF && len(t.in) > 0 {
				return 0, errGRPCWebText
			}
			return 0, t.err
		}
		if t.in == nil {
			t.in = make([]byte, 0, 16<<10)
		}
		n, err := t.r.Read(t.in[len(t.in):cap(t.in)])
		t.err = err
		var rest []byte
		t.out, rest, err = appendTextDecoded(t.out[:0], t.in[:len(t.in)+n])
		if err != nil {
			t.err = err
			return 0, err
		}
		t.off = 0
		t.in = t.in[:copy(t.in[:cap(t.in)], rest)]
	}
	n := copy(p, t.out[t.off:])
	t.off += n
	return n, nil
}

// grpcToGRPCWeb makes an HTTP/2 target's gRPC answer a gRPC-Web one: its
// Content-Type, and its body streamed with the trailers as a last frame.
func grpcToGRPCWeb(resp *fasthttp.Response, mode grpcWebMode) {
	ct := resp.Header.ContentType()
	if !isGRPC(string(ct)) {
		return // not gRPC: the gateway's check (grpcWebAnswer) maps the status
	}
	prefix := ctGRPCWeb
	if mode == grpcWebText {
		prefix = ctGRPCWebText
	}
	resp.Header.SetContentType(prefix + string(ct[len(ctGRPC):]))
	up, ok := resp.BodyStream().(*transport.H2Body)
	if !ok {
		return
	}
	body := &grpcWebBody{up: up.Move(), text: mode == grpcWebText,
		trailersOnly: len(resp.Header.Peek("Grpc-Status")) > 0}
	resp.SetBodyStream(body, -1)
}

// grpcWebBody is an HTTP/2 target's gRPC answer as gRPC-Web: its messages
// as they come (base64 in -text), then its trailers as one frame.
type grpcWebBody struct {
	up           *transport.H2Body
	text         bool
	trailersOnly bool   // the status came in the headers: no trailer frame
	raw          []byte // -text: bytes read, before encoding
	out          []byte // encoded or trailer bytes not yet read
	off          int
	done         bool
}

func (b *grpcWebBody) Read(p []byte) (int, error) {
	for {
		if b.off < len(b.out) {
			n := copy(p, b.out[b.off:])
			b.off += n
			return n, nil
		}
		if b.done {
			return 0, io.EOF
		}
		b.out, b.off = b.out[:0], 0
		if !b.text {
			n, err := b.up.Read(p)
			if err != nil {
				b.finish(err)
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		if b.raw == nil {
			b.raw = make([]byte, 12<<10)
		}
		// What came, encoded at once (padded): a message is not held
		// back for the bytes of the next one. Clients decode padded
		// pieces one after another, as they do the trailer frame.
		n, err := b.up.Read(b.raw)
		if n > 0 {
			b.out = base64.StdEncoding.AppendEncode(b.out, b.raw[:n])
		}
		if err != nil {
			b.finish(err)
		}
	}
}

// finish appends the trailer frame: the upstream's trailers, or the
// status of a call that broke off (err not io.EOF).
func (b *grpcWebBody) finish(err error) {
	b.done = true
	tr := b.up.Trailer()
	var frame []byte
	if err != io.EOF && len(tr["Grpc-Status"]) == 0 {
		code, msg := grpcBrokenOff(err)
		frame = appendTrailerLine(frame, "grpc-status", strconv.Itoa(code))
		frame = appendTrailerLine(frame, "grpc-message", msg)
	} else if len(tr) == 0 && b.trailersOnly {
		return
	}
	for k, vs := range tr {
		for _, v := range vs {
			frame = appendTrailerLine(frame, strings.ToLower(k), v)
		}
	}
	if len(tr) == 0 && err == io.EOF {
		// A stream without a status: gRPC clients call it INTERNAL.
		frame = appendTrailerLine(frame, "grpc-status", "13")
		frame = appendTrailerLine(frame, "grpc-message", "upstream sent no grpc-status")
	}
	hdr := [5]byte{0x80, byte(len(frame) >> 24), byte(len(frame) >> 16), byte(len(frame) >> 8), byte(len(frame))}
	if b.text {
		b.out = base64.StdEncoding.AppendEncode(b.out, append(hdr[:], frame...))
		return
	}
	b.out = append(append(b.out, hdr[:]...), frame...)
}

func appendTrailerLine(dst []byte, k, v string) []byte {
	return append(append(append(append(dst, k...), ':'), v...), "\r\n"...)
}

// Close ends the upstream stream.
func (b *grpcWebBody) Close() error { return b.up.Close() }

// grpcBrokenOff is the status of a gRPC call whose upstream broke off
// mid-stream: the client gets a status, not a stream that ends without one.
func grpcBrokenOff(err error) (code int, msg string) {
	if transport.IsTimeout(err) {
		return 4, "upstream timed out"
	}
	return 14, "upstream failed"
}

// grpcWebAnswer makes an answer to a gRPC-Web call that is not gRPC (the
// gateway's own, a non-gRPC upstream's) a gRPC status in the headers:
// HTTP 200, trailers-only, the answer's other fields kept (CORS,
// WWW-Authenticate, Retry-After). mode is the call's flavour when the
// forward translated it (its Content-Type is gRPC's then).
func grpcWebAnswer(rc *fasthttp.RequestCtx, mode grpcWebMode) {
	if mode == 0 {
		if mode = grpcWebOf(rc.Request.Header.ContentType()); mode == 0 {
			return
		}
	}
	resp := &rc.Response
	if ct := resp.Header.ContentType(); grpcWebOf(ct) != 0 || isGRPC(string(ct)) {
		return
	}
	status := resp.StatusCode()
	var body []byte
	if !resp.IsBodyStream() {
		body = resp.Body()
	}
	msg := grpcPercentEncode(gatewayMessage(body, status))
	resp.ResetBody() // closes a streamed one
	resp.SetStatusCode(http.StatusOK)
	if mode == grpcWebText {
		resp.Header.SetContentType(ctGRPCWebText + "+proto")
	} else {
		resp.Header.SetContentType(ctGRPCWeb + "+proto")
	}
	resp.Header.Set("Grpc-Status", strconv.Itoa(grpcCodeOf(status)))
	resp.Header.Set("Grpc-Message", msg)
	resp.Header.SetContentLength(0)
}
