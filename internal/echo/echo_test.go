package echo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestHandler(t *testing.T) {
	h := Handler("e1")
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/some/path?x=1")
	rc.Request.Header.Set("X-Test", "v")
	rc.Request.SetBodyString("hello")
	h(&rc)
	var r Reply
	if err := json.Unmarshal(rc.Response.Body(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Path != "/some/path" || r.Query != "x=1" || r.Headers["X-Test"] != "v" || r.Body != "hello" || r.BodyLen != 5 || r.Server != "e1" {
		t.Fatalf("%+v", r)
	}
	for path, want := range map[string]int{"/status/418": 418, "/healthz": 200, "/static": 200} {
		var rc fasthttp.RequestCtx
		rc.Request.SetRequestURI(path)
		h(&rc)
		if rc.Response.StatusCode() != want {
			t.Errorf("%s: %d", path, rc.Response.StatusCode())
		}
	}
	var big fasthttp.RequestCtx
	big.Request.SetRequestURI("/bytes/1000")
	h(&big)
	if !big.Response.IsBodyStream() || big.Response.Header.ContentLength() != 1000 {
		t.Fatalf("/bytes: stream %v, length %d", big.Response.IsBodyStream(), big.Response.Header.ContentLength())
	}
	if n, _ := copyCount(strings.NewReader(strings.Repeat("a", 70000))); n != 70000 {
		t.Fatalf("copyCount %d", n)
	}
}

// TestListenHoldsAnswers: served on Listen, keep-alive answers are held
// and sent by the next read; each still arrives in full before the client
// sends again, and a Connection: close answer is sent before the close.
func TestListenHoldsAnswers(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server("held")
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i, conn := range []string{"keep-alive", "keep-alive", "close"} {
		fmt.Fprintf(c, "GET /static HTTP/1.1\r\nHost: x\r\nConnection: %s\r\n\r\n", conn)
		var resp fasthttp.Response
		if err := resp.Read(br); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if resp.StatusCode() != 200 || len(resp.Body()) != 64 || string(resp.Header.Peek("X-Echo-Server")) != "held" {
			t.Fatalf("answer %d: %d %q", i, resp.StatusCode(), resp.Body())
		}
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close: %v %v, want EOF", n, err)
	}
}
