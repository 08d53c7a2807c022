package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// bodySeer tells the client what the request phase saw of the body.
type bodySeer struct{}

func (bodySeer) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	seen := "streamed"
	if c.BodyBuffered() {
		seen = fmt.Sprintf("buffered %d", len(c.RequestBody()))
	}
	c.SetResponseHeader("X-Seen", []byte(seen))
	return sdk.Continue, nil
}

func init() {
	sdk.Register(sdk.Factory{Name: "test_body", New: func(*sdk.Build, json.RawMessage) (sdk.Filter, error) { return bodySeer{}, nil }})
}

// rawDo writes raw to the gateway on a new connection and reads the
// answer's status, X-Seen and body.
func (g *gateway) rawDo(raw string) (int, string, string) {
	g.t.Helper()
	conn, err := g.ln.Dial()
	if err != nil {
		g.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(conn, raw) }()
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		g.t.Fatalf("reading the answer: %v", err)
	}
	return resp.StatusCode(), string(resp.Header.Peek("X-Seen")), string(resp.Body())
}

func chunked(body string, trailer bool) string {
	var b strings.Builder
	b.WriteString("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n")
	if trailer {
		b.WriteString("Trailer: X-Sum\r\n")
	}
	b.WriteString("\r\n")
	for rest := body; len(rest) > 0; {
		n := min(len(rest), 60000)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	b.WriteString("0\r\n")
	if trailer {
		b.WriteString("X-Sum: 1\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func withLength(body string) string {
	return fmt.Sprintf("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// TestRequestBodyDecision: where readBody draws the line between a
// buffered and a streamed body, and how each reaches the upstream.
func TestRequestBodyDecision(t *testing.T) {
	up := startUpstream(t, func(rc *fasthttp.RequestCtx) {
		n := 0
		if rc.Request.IsBodyStream() {
			k, _ := io.Copy(io.Discard, rc.RequestBodyStream())
			n = int(k)
		} else {
			n = len(rc.Request.Body())
		}
		fmt.Fprintf(rc, "cl=%d n=%d", rc.Request.Header.ContentLength(), n)
	})
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
server: {max_body_bytes: 400000}
services: [{name: s, targets: [{url: "UP"}]}]
routes: [{name: r, paths: ["/"], service: s, plugins: [{name: test_body}]}]
`, "UP", up.URL))
	at := strings.Repeat("a", streamThreshold)
	over := at + "a"
	for _, tc := range []struct {
		name, raw    string
		status       int
		seen, answer string
	}{
		{"length at the threshold", withLength(at), 200, fmt.Sprintf("buffered %d", len(at)), fmt.Sprintf("cl=%d n=%d", len(at), len(at))},
		{"length over it", withLength(over), 200, "streamed", fmt.Sprintf("cl=%d n=%d", len(over), len(over))},
		{"chunked at the threshold", chunked(at, false), 200, fmt.Sprintf("buffered %d", len(at)), fmt.Sprintf("cl=%d n=%d", len(at), len(at))},
		{"chunked over it", chunked(over, false), 200, "streamed", fmt.Sprintf("cl=-1 n=%d", len(over))},
		{"chunked with trailers", chunked("tiny", true), 200, "streamed", "cl=-1 n=4"},
		{"empty", withLength(""), 200, "buffered 0", "cl=0 n=0"},
		{"chunked over max_body_bytes", chunked(strings.Repeat("b", 400001), false), 413, "", ""},
		{"length over max_body_bytes", withLength(strings.Repeat("b", 400001)), 413, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, seen, body := g.rawDo(tc.raw)
			if status != tc.status {
				t.Fatalf("status %d %s, want %d", status, body, tc.status)
			}
			if tc.status == 200 && (seen != tc.seen || body != tc.answer) {
				t.Fatalf("filter saw %q, upstream answered %q; want %q, %q", seen, body, tc.seen, tc.answer)
			}
		})
	}
}

// TestRequestBodyMaxBelowThreshold: with server.max_body_bytes below the
// buffering threshold, a chunked body is refused as soon as it passes the
// limit, before any filter or upstream sees it.
func TestRequestBodyMaxBelowThreshold(t *testing.T) {
	up := startUpstream(t, func(rc *fasthttp.RequestCtx) { rc.SetBodyString("up") })
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
server: {max_body_bytes: 100}
services: [{name: s, targets: [{url: "UP"}]}]
routes: [{name: r, paths: ["/"], service: s, plugins: [{name: test_body}]}]
`, "UP", up.URL))
	if status, seen, _ := g.rawDo(chunked(strings.Repeat("c", 100), false)); status != 200 || seen != "buffered 100" {
		t.Fatalf("at the limit: %d %q", status, seen)
	}
	if status, seen, _ := g.rawDo(chunked(strings.Repeat("c", 101), false)); status != 413 || seen != "" {
		t.Fatalf("over the limit: %d %q", status, seen)
	}
}
