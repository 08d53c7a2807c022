//lint:file-ignore SA1019 x/net/http2 is deprecated in favour of net/http, which cannot serve one connection handed over by fasthttp (ServeConn) nor take Upgrade: h2c (RATIONALE.md)

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/protobuf/proto"
)

// gRPC-Web through Weir: the client here speaks gRPC-Web on the wire
// (framing written below, as a browser's grpc-web library sends it) over
// HTTP/1.1 and h2c; the upstream is grpc-go's server, which speaks only
// gRPC over HTTP/2.

// grpcWebAnswer is a gRPC-Web answer taken apart: its messages and the
// fields of its trailer frame (names lower case, as the protocol has them).
type grpcWebAnswer struct {
	resp     *http.Response
	messages [][]byte
	trailer  map[string]string
}

// grpcWebCall posts one framed message and reads the whole answer.
func grpcWebCall(t *testing.T, hc *http.Client, url, ct string, msg proto.Message, hdr map[string]string) *grpcWebAnswer {
	t.Helper()
	body := grpcFrame(t, msg)
	if strings.HasPrefix(ct, "application/grpc-web-text") {
		body = []byte(base64.StdEncoding.EncodeToString(body))
	}
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-Grpc-Web", "1")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc-web-text") {
		raw = decodePaddedPieces(t, raw)
	}
	a := &grpcWebAnswer{resp: resp, trailer: map[string]string{}}
	for len(raw) > 0 {
		if len(raw) < 5 {
			t.Fatalf("a truncated frame header: %q", raw)
		}
		n := int(binary.BigEndian.Uint32(raw[1:5]))
		if len(raw) < 5+n {
			t.Fatalf("a frame of %d bytes with %d left", n, len(raw)-5)
		}
		flag, payload := raw[0], raw[5:5+n]
		raw = raw[5+n:]
		if flag&0x80 == 0 {
			a.messages = append(a.messages, payload)
			continue
		}
		if len(raw) > 0 {
			t.Fatalf("%d bytes after the trailer frame", len(raw))
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(payload), "\r\n"), "\r\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || k != strings.ToLower(k) {
				t.Fatalf("trailer frame line %q: want lower-case name:value", line)
			}
			a.trailer[k] = strings.TrimSpace(v)
		}
	}
	return a
}

// decodePaddedPieces decodes grpc-web-text: base64 whose pieces may each
// end with padding.
func decodePaddedPieces(t *testing.T, s []byte) []byte {
	t.Helper()
	var out []byte
	for len(s) > 0 {
		end := len(s)
		if i := bytes.IndexByte(s, '='); i >= 0 {
			end = i
			for end < len(s) && s[end] == '=' {
				end++
			}
		}
		b, err := base64.StdEncoding.DecodeString(string(s[:end]))
		if err != nil {
			t.Fatalf("grpc-web-text answer is not base64: %v", err)
		}
		out, s = append(out, b...), s[end:]
	}
	return out
}

func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, n, a)
		}}}
}

// TestGRPCWebThroughWeir: unary and server-streaming gRPC-Web calls, binary
// and -text, over HTTP/1.1 and h2c, reach a gRPC server as gRPC and come
// back as gRPC-Web, the trailers (the upstream's status, metadata) in a
// last frame flagged 0x80; the gateway's own refusal (key_auth) is
// UNAUTHENTICATED in the headers; the cors plugin lets a browser's
// gRPC-Web headers through.
func TestGRPCWebThroughWeir(t *testing.T) {
	up, _ := startGRPC(t)
	w := startWeir(t, grpcCfg(up, `, plugins: [
      {name: cors, config: {origins: ["https://app.example.com"], methods: [POST],
        headers: [content-type, x-grpc-web, x-user-agent, x-api-key, x-token],
        exposed_headers: [grpc-status, grpc-message, x-echo-token]}},
      {name: key_auth, config: {header: x-api-key}}]`))
	base := "http://" + w.Addr + "/grpc.testing.TestService/"
	keyed := map[string]string{"X-Api-Key": "alice-key", "X-Token": "tok", "Origin": "https://app.example.com"}
	clients := []struct {
		name  string
		hc    *http.Client
		proto int
	}{{"http/1.1", &http.Client{}, 1}, {"h2c", h2cClient(), 2}}
	for _, cl := range clients {
		for _, ct := range []string{"application/grpc-web+proto", "application/grpc-web-text"} {
			kind := cl.name + " " + ct
			a := grpcWebCall(t, cl.hc, base+"UnaryCall", ct,
				&testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("hello")}}, keyed)
			if a.resp.ProtoMajor != cl.proto || a.resp.StatusCode != 200 {
				t.Fatalf("%s: HTTP/%d %d", kind, a.resp.ProtoMajor, a.resp.StatusCode)
			}
			// The flavour the client spoke, +proto or not.
			wantCT := strings.TrimSuffix(ct, "+proto")
			if got := strings.TrimSuffix(a.resp.Header.Get("Content-Type"), "+proto"); got != wantCT {
				t.Errorf("%s: Content-Type %q, want %q", kind, got, wantCT)
			}
			if got := a.resp.Header.Get("X-Echo-Token"); got != "tok" {
				t.Errorf("%s: the upstream's header metadata: x-echo-token %q", kind, got)
			}
			if got := a.resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "grpc-status") {
				t.Errorf("%s: cors exposes %q, want grpc-status among them", kind, got)
			}
			var r testgrpc.SimpleResponse
			if len(a.messages) != 1 || proto.Unmarshal(a.messages[0], &r) != nil || string(r.GetPayload().GetBody()) != "hello" {
				t.Fatalf("%s: messages %q", kind, a.messages)
			}
			if a.trailer["grpc-status"] != "0" || a.trailer["x-trailer"] != "done" {
				t.Errorf("%s: trailer frame %q", kind, a.trailer)
			}
			if b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(a.trailer["x-trailer-bin"], "=")); err != nil || !bytes.Equal(b, binTrailer) {
				t.Errorf("%s: binary trailer %q", kind, a.trailer["x-trailer-bin"])
			}

			a = grpcWebCall(t, cl.hc, base+"UnaryCall", ct,
				&testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("not-found")}}, keyed)
			if len(a.messages) != 0 || a.trailer["grpc-status"] != "5" || a.trailer["grpc-message"] != "no such thing: %C3%BC" {
				t.Errorf("%s: the upstream's status: messages %q trailer %q", kind, a.messages, a.trailer)
			}

			a = grpcWebCall(t, cl.hc, base+"StreamingOutputCall", ct, &testgrpc.StreamingOutputCallRequest{
				ResponseParameters: []*testgrpc.ResponseParameters{{Size: 10}, {Size: 70000}, {Size: 3}}}, keyed)
			var sizes []int
			for _, m := range a.messages {
				var r testgrpc.StreamingOutputCallResponse
				if err := proto.Unmarshal(m, &r); err != nil {
					t.Fatalf("%s: a streamed message: %v", kind, err)
				}
				sizes = append(sizes, len(r.GetPayload().GetBody()))
			}
			if len(sizes) != 3 || sizes[0] != 10 || sizes[1] != 70000 || sizes[2] != 3 || a.trailer["grpc-status"] != "0" {
				t.Errorf("%s: server streaming: sizes %v trailer %q", kind, sizes, a.trailer)
			}

			// No key: the gateway's refusal, trailers-only.
			a = grpcWebCall(t, cl.hc, base+"UnaryCall", ct, &testgrpc.SimpleRequest{},
				map[string]string{"Origin": "https://app.example.com"})
			h := a.resp.Header
			if a.resp.StatusCode != 200 || h.Get("Grpc-Status") != "16" || strings.TrimSuffix(h.Get("Content-Type"), "+proto") != wantCT ||
				len(a.messages) != 0 || len(a.trailer) != 0 {
				t.Errorf("%s: no key: want 200 with grpc-status 16 in the headers, got %d %v, messages %q trailer %q",
					kind, a.resp.StatusCode, h, a.messages, a.trailer)
			}
			if h.Get("Grpc-Message") == "" || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
				t.Errorf("%s: the refusal keeps its message and CORS fields: %v", kind, h)
			}
		}
	}

	// The browser's preflight before such a call.
	req, _ := http.NewRequest("OPTIONS", base+"UnaryCall", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web,x-user-agent,x-api-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if allow := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")); resp.StatusCode != 204 ||
		!strings.Contains(allow, "x-grpc-web") || !strings.Contains(allow, "x-user-agent") {
		t.Errorf("preflight: %d, Access-Control-Allow-Headers %q", resp.StatusCode, allow)
	}

	// A -text body that is not base64 is the client's fault: INTERNAL,
	// and nothing reaches the upstream.
	req, _ = http.NewRequest("POST", base+"UnaryCall", strings.NewReader("!!not base64!"))
	req.Header.Set("Content-Type", "application/grpc-web-text")
	req.Header.Set("X-Api-Key", "alice-key")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "13" {
		t.Errorf("bad base64: want grpc-status 13 in the headers, got %d %v", resp.StatusCode, resp.Header)
	}
}
