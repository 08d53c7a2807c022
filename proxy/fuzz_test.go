package proxy

import (
	"bufio"
	"bytes"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/httpsyntax"
)

// FuzzServeConn feeds arbitrary bytes to the gateway as a client
// connection: it must never panic or hang, and whatever it answers must
// parse as HTTP.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /api/x?y=1 HTTP/1.1\r\nHost: a\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
		"POST /users/1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET /%2e%2e/%00 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://evil/api HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
		"OPTIONS /users/1 HTTP/1.1\r\nHost: a\r\nOrigin: x\r\nAccess-Control-Request-Method: GET\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	up := staticUpstream(f)
	srv, err := New(mustParse(f, sub(allocConfig, "UP", up.URL)), "test.yaml", quietLog())
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Shutdown(ctxTimeout(2e9))
	f.Fuzz(func(t *testing.T, raw []byte) {
		conn := &fakeConn{r: bytes.NewReader(raw)}
		done := make(chan struct{})
		go func() {
			_ = srv.fs.ServeConn(conn)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ServeConn hung on a closed input")
		}
		br := bufio.NewReader(bytes.NewReader(conn.w.Bytes()))
		for {
			var resp fasthttp.Response
			if err := resp.Read(br); err != nil {
				break
			}
			if resp.StatusCode() < 100 || resp.StatusCode() > 599 {
				t.Fatalf("bad status %d", resp.StatusCode())
			}
		}
	})
}

// fakeConn is a client connection that sends fixed bytes, then EOF, and
// records what the server writes.
type fakeConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (c *fakeConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error)        { return c.w.Write(p) }
func (c *fakeConn) Close() error                       { return nil }
func (c *fakeConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080} }
func (c *fakeConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555} }
func (c *fakeConn) SetDeadline(t time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzEscapedPath: what we send upstream must decode back to exactly the
// path the router saw.
func FuzzEscapedPath(f *testing.F) {
	for _, s := range []string{"/", "/a b", "/%", "/a?b#c", "/ü/\x7f", "/a/../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		enc := string(httpsyntax.AppendEscapedPath(nil, []byte(p)))
		if bytes.ContainsAny([]byte(enc), " ?#\r\n\x00") {
			t.Fatalf("unsafe byte left in %q", enc)
		}
		dec, err := url.PathUnescape(enc)
		if err != nil || dec != p {
			t.Fatalf("%q -> %q -> %q (%v)", p, enc, dec, err)
		}
	})
}

// FuzzTraceparent: never panics; accepted values have the W3C shape.
func FuzzTraceparent(f *testing.F) {
	f.Add("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	f.Add("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	f.Add("00-00000000000000000000000000000000-b7ad6b7169203331-01")
	f.Fuzz(func(t *testing.T, v string) {
		if validTraceparent([]byte(v)) && (len(v) < 55 || v[2] != '-') {
			t.Fatalf("accepted %q", v)
		}
	})
}
