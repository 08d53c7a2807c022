package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serveRaw runs a loopback TCP upstream that hands every accepted
// connection to handle (on its own goroutine; handle owns the connection)
// and stops when the test ends. Raw upstreams are for tests that need
// bytes no HTTP server library would send, or the exact bytes received.
func serveRaw(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// serveHTTP runs h on a loopback net/http server until the test ends.
func serveHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// serveFast runs h on a loopback fasthttp server until the test ends.
func serveFast(t testing.TB, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// connExchange writes raw request bytes on c and reads one whole answer
// from br (framed by its own Content-Length or chunking). A nil response
// means the write or the status line and header failed; with a response,
// err is a failure reading its body.
func connExchange(c net.Conn, br *bufio.Reader, raw string) (*http.Response, string, error) {
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, "", fmt.Errorf("writing the request: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", fmt.Errorf("reading the answer: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp, string(body), fmt.Errorf("reading the body: %w", err)
	}
	return resp, string(body), nil
}

// readHead reads one request line and header block, through the blank
// line that ends it, and returns it as received.
func readHead(br *bufio.Reader) (string, error) {
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return head.String(), err
		}
		head.WriteString(line)
		if line == "\r\n" {
			return head.String(), nil
		}
	}
}

// listenRaw runs a loopback upstream that answers every connection with
// answer (after reading the request header) and closes it.
func listenRaw(t *testing.T, answer string) string {
	t.Helper()
	return serveRaw(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = c.Write([]byte(answer))
	})
}

// recordingUpstream is a raw loopback HTTP/1.1 server that answers every
// request 200 "ok" and hands each request line and header block to the
// test, so a test sees the exact bytes the gateway sent.
func recordingUpstream(t *testing.T) (string, <-chan string) {
	t.Helper()
	got := make(chan string, 64)
	addr := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			select {
			case got <- head:
			default:
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	return addr, got
}
