package main

import (
	"strings"
	"testing"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want response
		err  string
	}{
		{name: "partial header", in: "HTTP/1.1 200 OK\r\nContent-Len", want: response{}},
		{name: "content-length complete", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", want: response{complete: true, status: 200}},
		{name: "content-length partial", in: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nok", want: response{status: 200}},
		{name: "connection close", in: "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", want: response{complete: true, status: 503, close: true}},
		{name: "http/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", want: response{complete: true, status: 200, close: true}},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", want: response{complete: true, status: 200}},
		{name: "no body on 204", in: "HTTP/1.1 204 No Content\r\n\r\n", want: response{complete: true, status: 204}},
		{name: "no body on 304", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", want: response{complete: true, status: 304}},
		{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\nsome", want: response{status: 200, untilClose: true}},
		{name: "chunked complete", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3;x=y\r\nabc\r\n0\r\n\r\n", want: response{complete: true, status: 200}},
		{name: "chunked trailers", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n", want: response{complete: true, status: 200}},
		{name: "chunked partial", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok", want: response{status: 200}},
		{name: "chunked no last chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", want: response{status: 200}},
		{name: "bad status line", in: "HTTP/2 200\r\n\r\n", err: `bad status line "HTTP/2 200"`},
		{name: "bad status code", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: `bad status line "HTTP/1.1 2x0 OK"`},
		{name: "status out of range", in: "HTTP/1.1 999 OK\r\n\r\n", err: `bad status line "HTTP/1.1 999 OK"`},
		{name: "bad header", in: "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", err: `bad header line "nocolon"`},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: `bad Content-Length "-1"`},
		{name: "body too long", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nok", err: "1 bytes past the 1-byte body"},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: `bad chunk size "zz"`},
		{name: "chunk without crlf", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n", err: "chunk not followed by CRLF"},
		{name: "huge header", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", 10000), err: "response header over 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseResponse([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzParseResponse: the generator parses whatever the contender sends
// back; no input may panic it, and a complete response has a status.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 204 x\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseResponse(b)
		if err == nil && r.complete && (r.status < 100 || r.status > 599) {
			t.Fatalf("complete response with status %d from %q", r.status, b)
		}
	})
}

func TestSockaddr(t *testing.T) {
	if _, err := sockaddr("127.0.0.1:80"); err != nil {
		t.Error(err)
	}
	if _, err := sockaddr("[::1]:80"); err != nil {
		t.Error(err)
	}
	if _, err := sockaddr("nonsense"); err == nil || !strings.Contains(err.Error(), `load: target "nonsense"`) {
		t.Errorf("err = %v", err)
	}
}

func TestMsUntil(t *testing.T) {
	for _, tt := range []struct {
		ns   int64
		want int
	}{{-5, 0}, {0, 0}, {1, 1}, {1_000_000, 1}, {1_000_001, 2}} {
		if got := msUntil(tt.ns); got != tt.want {
			t.Errorf("msUntil(%d) = %d, want %d", tt.ns, got, tt.want)
		}
	}
}
