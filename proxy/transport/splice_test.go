package transport

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// recordServer answers every request with "ok" and sends each request's
// header block and body, as they arrived, to the returned channel.
func recordServer(t *testing.T, closeAfterFirst bool) (string, chan [2]string) {
	got := make(chan [2]string, 16)
	addr := rawServer(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			var head bytes.Buffer
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if line == "\r\n" {
					break
				}
			}
			var req fasthttp.Request
			if err := req.Header.Read(bufio.NewReaderSize(strings.NewReader(head.String()), 16<<10)); err != nil {
				t.Errorf("upstream could not parse a %d-byte header: %v", head.Len(), err)
				return
			}
			body := make([]byte, max(req.Header.ContentLength(), 0))
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			got <- [2]string{head.String(), string(body)}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			if closeAfterFirst {
				time.Sleep(20 * time.Millisecond)
				return
			}
		}
	})
	return addr, got
}

const extraLines = "X-Forwarded-For: 10.1.2.3\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"

// TestDoWithHeadersSplicesBeforeTheBlankLine: the extra lines land at the
// end of the header, once, whatever the request: no body, a body holding
// a blank line of its own, a header larger than the connection's write
// buffer, a streamed body.
func TestDoWithHeadersSplicesBeforeTheBlankLine(t *testing.T) {
	addr, got := recordServer(t, false)
	tr := New(Config{Addr: addr})
	defer tr.Close()
	big := strings.Repeat("b", 6000)
	cases := []struct {
		name   string
		setup  func(r *fasthttp.Request)
		body   string
		header string // a field that must still be there
	}{
		{"GET", func(r *fasthttp.Request) {}, "", "Host: up"},
		{"POST with a blank line in its body", func(r *fasthttp.Request) {
			r.Header.SetMethod("POST")
			r.SetBodyString("a\r\n\r\nX-Evil: 1\r\n\r\n")
		}, "a\r\n\r\nX-Evil: 1\r\n\r\n", "Content-Length: 18"},
		{"header larger than the write buffer", func(r *fasthttp.Request) {
			r.Header.Set("X-Big", big)
		}, "", "X-Big: " + big},
		{"body in memory larger than the write buffer", func(r *fasthttp.Request) {
			r.Header.SetMethod("POST")
			r.SetBodyString(strings.Repeat("m\r\n\r\n", 2000))
		}, strings.Repeat("m\r\n\r\n", 2000), "Content-Length: 10000"},
		{"streamed body", func(r *fasthttp.Request) {
			r.Header.SetMethod("PUT")
			r.SetBodyStream(strings.NewReader(strings.Repeat("s", 9000)), 9000)
		}, strings.Repeat("s", 9000), "Content-Length: 9000"},
	}
	for _, tc := range cases {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI("/x")
		req.Header.SetHost("up")
		tc.setup(req)
		resp := &fasthttp.Response{}
		if err := tr.DoWithHeaders(req, resp, []byte(extraLines), time.Now().Add(2*time.Second)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fasthttp.ReleaseRequest(req)
		if string(resp.Body()) != "ok" {
			t.Fatalf("%s: answer %q", tc.name, resp.Body())
		}
		r := <-got
		if !strings.HasSuffix(r[0], "\r\n"+extraLines+"\r\n") {
			t.Errorf("%s: extra lines not at the end of the header:\n%q", tc.name, r[0])
		}
		if strings.Count(r[0], "X-Forwarded-For:") != 1 || !strings.Contains(r[0], tc.header+"\r\n") {
			t.Errorf("%s: header %q", tc.name, r[0])
		}
		if r[1] != tc.body {
			t.Errorf("%s: body %q, want %q", tc.name, r[1], tc.body)
		}
	}
	// Do adds nothing, on the same (reused) connection.
	if _, err := get(t, tr, "/plain"); err != nil {
		t.Fatal(err)
	}
	if r := <-got; strings.Contains(r[0], "X-Forwarded-For") {
		t.Errorf("Do sent extra lines: %q", r[0])
	}
}

// TestDoWithHeadersOnRetry: a request retried on a new connection (the
// pooled one was closed by the upstream) carries the lines again.
func TestDoWithHeadersOnRetry(t *testing.T) {
	addr, got := recordServer(t, true)
	tr := New(Config{Addr: addr})
	defer tr.Close()
	for i := 0; i < 3; i++ {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI("/r")
		req.Header.SetHost("up")
		resp := &fasthttp.Response{}
		err := tr.DoWithHeaders(req, resp, []byte(extraLines), time.Now().Add(2*time.Second))
		fasthttp.ReleaseRequest(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if r := <-got; !strings.HasSuffix(r[0], "\r\n"+extraLines+"\r\n") {
			t.Fatalf("request %d: %q", i, r[0])
		}
		time.Sleep(40 * time.Millisecond) // the upstream has closed it by now
	}
}

func TestHeaderSpliceRefusesAWriteWithoutHeaderEnd(t *testing.T) {
	var out bytes.Buffer
	s := headerSplice{w: &out, extra: []byte("X: 1\r\n")}
	if _, err := s.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n")); err != errNoHeaderEnd || out.Len() != 0 {
		t.Fatalf("err %v, wrote %q", err, out.String())
	}
	// Disarmed: what follows passes through.
	if _, err := s.Write([]byte("rest")); err != nil || out.String() != "rest" {
		t.Fatalf("err %v, wrote %q", err, out.String())
	}
}

// TestDoWithHeadersChunkedWithTrailers: a request fasthttp sends chunked
// (it has trailers) whose body ends like a header does: the lines still go
// into the header, not into the body or the trailer section.
func TestDoWithHeadersChunkedWithTrailers(t *testing.T) {
	got := make(chan string, 1)
	addr := rawServer(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			t.Errorf("upstream: %v", err)
			return
		}
		got <- fmt.Sprintf("%s|body=%q|trailer=%q|xff=%q", req.Header.Peek("Transfer-Encoding"), req.Body(),
			req.Header.Peek("X-Trail"), req.Header.Peek("X-Forwarded-For"))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := New(Config{Addr: addr})
	defer tr.Close()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("/t")
	req.Header.SetHost("up")
	req.Header.SetMethod("POST")
	// Counted back by the body's length from the end of the chunked
	// message ("17\r\n" body "\r\n0\r\nX-Trail: t\r\n\r\n"), the four
	// bytes found are the body's 16th to 19th: a blank line.
	req.SetBodyString("aaaaaaaaaaaaaaa\r\n\r\nzzzz")
	if err := req.Header.SetTrailer("X-Trail"); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Trail", "t")
	resp := &fasthttp.Response{}
	if err := tr.DoWithHeaders(req, resp, []byte(extraLines), time.Now().Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r != `chunked|body="aaaaaaaaaaaaaaa\r\n\r\nzzzz"|trailer="t"|xff="10.1.2.3"` {
		t.Fatalf("upstream saw %s", r)
	}
}
