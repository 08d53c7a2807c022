package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/proxy/transport"
)

// gRPC through the gateway: calls are HTTP/2 requests whose
// Content-Type is application/grpc (or application/grpc+proto, ...). The
// gateway proxies them like any request, its HTTP/2 server (h2front.go) streams
// their bodies both ways and passes the upstream's trailers on, and an
// answer the gateway makes itself becomes a gRPC status.

// isGRPC reports whether a Content-Type is gRPC's.
func isGRPC(ct string) bool {
	return strings.HasPrefix(ct, "application/grpc") &&
		(len(ct) == len("application/grpc") || ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

// grpcCodeOf maps the gateway's HTTP statuses to gRPC status codes
// (README: "gRPC"): the table SPEC fixes, then gRPC's own mapping of HTTP
// statuses (grpc/doc/http-grpc-status-mapping.md) for the rest.
func grpcCodeOf(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 13 // INTERNAL
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return 12 // UNIMPLEMENTED
	case http.StatusRequestEntityTooLarge:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return 4 // DEADLINE_EXCEEDED
	}
	return 2 // UNKNOWN
}

// appendGRPCError is the header block of a gRPC call's answer with the
// status the HTTP answer resp maps to, trailers-only (one HEADERS frame):
// HTTP 200, the gRPC status and message, and the answer's own fields
// (Retry-After, RateLimit-*, WWW-Authenticate, X-Request-Id).
func appendGRPCError(b []byte, resp *fasthttp.Response, status int) []byte {
	b = appendH2Fields(appendH2Status(b, http.StatusOK), resp, []byte("Cache-Control"))
	b = appendH2Field(b, []byte("content-type"), []byte("application/grpc"))
	b = appendH2Field(b, []byte("grpc-status"), strconv.AppendInt(nil, int64(grpcCodeOf(status)), 10))
	return appendH2Field(b, []byte("grpc-message"), []byte(grpcPercentEncode(gatewayMessage(resp.Body(), status))))
}

// gatewayMessage is the "error" of the gateway's JSON error body, else
// the status text.
func gatewayMessage(body []byte, status int) string {
	var e struct {
		Error string `json:"error"`
	}
	if len(body) > 0 && json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return http.StatusText(status)
}

// grpcPercentEncode encodes a grpc-message value (gRPC over HTTP/2:
// percent-encoding of bytes outside printable ASCII and of '%').
func grpcPercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c <= '~' && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}

// grpcTimeout parses a grpc-timeout value ("100m", "2S": at most 8 digits
// and a unit); ok is false for a missing or malformed one.
func grpcTimeout(v []byte) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v[:len(v)-1]), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// isH2GRPCBody: the body of a gRPC call over HTTP/2, which streams —
// unless the client's END_STREAM came with it (a unary call's one
// message, mostly in the same read as its HEADERS): that body is
// read whole and goes upstream in one write with the HEADERS, with no
// goroutine to send it.
func isH2GRPCBody(stream io.Reader, req *fasthttp.Request) bool {
	p, ok := stream.(*h2Pipe)
	return ok && isGRPC(b2s(req.Header.ContentType())) && !p.ended()
}

// forwardH2 is one try to an HTTP/2 target: a gRPC call's own deadline
// (grpc-timeout) bounds it when it is sooner than the service's timeout,
// and a client stream's end (reset, gone) ends it (h2front.go).
func (s *Server) forwardH2(t *transport.Transport, rc *fasthttp.RequestCtx, st *reqState, t0 time.Time, timeout time.Duration) error {
	req := &rc.Request
	if d, ok := grpcTimeout(req.Header.Peek("Grpc-Timeout")); ok && d < timeout {
		timeout = d
	}
	ctx := context.Background()
	if st, ok := rc.UserValue(h2StreamKey{}).(*h2Stream); ok {
		ctx = st.Context()
	}
	if st.grpcWeb == 0 {
		// A gRPC-Web call (grpcweb.go) goes as gRPC, once: a retry
		// finds it translated.
		if st.grpcWeb = grpcWebOf(req.Header.ContentType()); st.grpcWeb != 0 {
			if err := grpcWebToGRPC(req, st.grpcWeb); err != nil {
				return err
			}
		}
	}
	dl := t0.Add(timeout)
	err := t.DoContext(ctx, req, &rc.Response, st.extra, dl)
	if err != nil && !transport.IsTimeout(err) && !time.Now().Before(dl) && !isClientBodyError(err) {
		// The upstream gave the call up at the deadline it was sent in
		// grpc-timeout (a gRPC server resets the stream, CANCEL) before
		// the gateway's own timer ran: a timeout (504, DEADLINE_EXCEEDED),
		// not an upstream failure.
		err = fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err)
	}
	if err == nil && st.grpcWeb != 0 {
		grpcToGRPCWeb(&rc.Response, st.grpcWeb)
	}
	return err
}

// isClientBodyError: err is the client's body failing (kept out of
// forwardH2, where its target variable would be allocated every call).
func isClientBodyError(err error) bool {
	var cbe *transport.ClientBodyError
	return errors.As(err, &cbe)
}
