package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestProxyWasmSDKRequestBodyRewrite: the bench's request-body filter
// (testdata/proxywasm/request_body_rewrite, bench scenario
// weir+wasm_request_body) reads a POSTed 1 KiB body in OnHttpRequestBody,
// buffered to the end of the stream, and replaces it: the upstream gets
// the rewritten bytes with a Content-Length that matches them, for a body
// sent with Content-Length (twice on one keep-alive connection, so the
// framing of the first cannot spill into the second) and for one sent in
// chunks.
func TestProxyWasmSDKRequestBodyRewrite(t *testing.T) {
	module := buildSDKFilter(t, "request_body_rewrite")
	up := startBodyRecorder(t)
	w := startWeir(t, sdkRoute(strings.TrimPrefix(up.URL, "http://"), "", module, ""))

	body := make([]byte, 0, 1024)
	for i := 0; len(body) < 1024; i++ {
		body = fmt.Appendf(body, "weir body line %03d\n", i)
	}
	body = body[:1024]
	want := bytes.ReplaceAll(body, []byte("weir"), []byte("WEIR-GW"))
	if len(want) == len(body) {
		t.Fatal("the test body has nothing to rewrite")
	}
	check := func(what string) {
		t.Helper()
		got, _ := up.last(t)
		if got.Method != "POST" || !bytes.Equal(got.Body, want) || got.ContentLength != int64(len(want)) || got.Chunked {
			t.Fatalf("%s: the upstream got %s with %d bytes (Content-Length %d, chunked %v), want %d rewritten bytes:\n%q",
				what, got.Method, len(got.Body), got.ContentLength, got.Chunked, len(want), got.Body[:min(len(got.Body), 120)])
		}
	}

	conn, err := net.DialTimeout("tcp", w.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	raw := fmt.Sprintf("POST /in HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	for i := 1; i <= 2; i++ {
		resp, answer, err := connExchange(conn, br, raw)
		if resp == nil || resp.StatusCode != 200 {
			t.Fatalf("keep-alive POST %d: %v %v %q", i, resp, err, answer)
		}
		if wantAnswer := fmt.Sprintf("got %d bytes", len(want)); answer != wantAnswer {
			t.Fatalf("keep-alive POST %d: answer %q, want %q", i, answer, wantAnswer)
		}
		check(fmt.Sprintf("keep-alive POST %d", i))
	}
	if n := up.count(); n != 2 {
		t.Fatalf("the upstream got %d requests, want 2", n)
	}

	// In chunks: the guest sees the body only at the end of the stream.
	var chunks []string
	for i := 0; i < len(body); i += 300 {
		chunks = append(chunks, string(body[i:min(i+300, len(body))]))
	}
	if resp, answer := bodyExchange(t, w.Addr, bodyPostChunked("/in", "text/plain", chunks...)); resp.StatusCode != 200 {
		t.Fatalf("chunked POST: %d %q", resp.StatusCode, answer)
	}
	check("chunked POST")
}
