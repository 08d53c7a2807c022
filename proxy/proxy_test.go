package proxy

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/echo"
)

func decodeEcho(t *testing.T, body string) echo.Reply {
	t.Helper()
	var r echo.Reply
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("echo reply is not JSON: %v\n%s", err, body)
	}
	return r
}

type gwError struct {
	Status    int    `json:"status"`
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeError(t *testing.T, resp *fasthttp.Response, body string, want int) gwError {
	t.Helper()
	if resp.StatusCode() != want {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode(), want, body)
	}
	if ct := string(resp.Header.ContentType()); ct != "application/json" {
		t.Fatalf("error content-type %q, want application/json", ct)
	}
	var e gwError
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	if e.Status != want || e.Error == "" || e.RequestID == "" {
		t.Fatalf("error body incomplete: %+v", e)
	}
	return e
}

const basicConfig = `
listen: "127.0.0.1:0"
services:
  - name: echo
    targets: [{url: "UP"}]
    timeout: 2s
routes:
  - name: api
    paths: ["/api"]
    strip_path: true
    service: echo
  - name: keep
    paths: ["/keep"]
    preserve_host: true
    service: echo
  - name: users
    paths: ["/users/{id}"]
    methods: [GET]
    service: echo
  - name: public
    paths: ["/public"]
    service: echo
`

func TestForwardBasics(t *testing.T) {
	up := startEcho(t, "e1")
	g := startGateway(t, sub(basicConfig, "UP", up.URL))

	t.Run("strip_path and query kept", func(t *testing.T) {
		resp, body := g.get("/api/things/7?x=1&y=%20")
		if resp.StatusCode() != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode(), body)
		}
		r := decodeEcho(t, body)
		if r.Path != "/things/7" || r.Query != "x=1&y=%20" {
			t.Fatalf("forwarded %q ? %q", r.Path, r.Query)
		}
		if r.Host != up.Addr {
			t.Fatalf("Host %q, want the target's %q", r.Host, up.Addr)
		}
	})
	t.Run("strip_path of the prefix itself forwards /", func(t *testing.T) {
		_, body := g.get("/api")
		if r := decodeEcho(t, body); r.Path != "/" {
			t.Fatalf("forwarded %q, want /", r.Path)
		}
	})
	t.Run("preserve_host", func(t *testing.T) {
		_, body := g.do("GET", "/keep", func(r *fasthttp.Request) { r.UseHostHeader = true; r.Header.SetHost("api.example.com") })
		if r := decodeEcho(t, body); r.Host != "api.example.com" {
			t.Fatalf("Host %q, want the client's", r.Host)
		}
	})
	t.Run("forwarded headers, request id and traceparent", func(t *testing.T) {
		resp, body := g.do("GET", "/public/x", func(r *fasthttp.Request) {
			r.UseHostHeader = true
			r.Header.SetHost("shop.example.com")
			r.Header.Set("X-Forwarded-For", "203.0.113.9")
		})
		r := decodeEcho(t, body)
		if got := r.Headers["X-Forwarded-For"]; !strings.HasPrefix(got, "203.0.113.9, ") {
			t.Fatalf("X-Forwarded-For %q does not append to the chain", got)
		}
		if r.Headers["X-Forwarded-Host"] != "shop.example.com" || r.Headers["X-Forwarded-Proto"] != "http" {
			t.Fatalf("X-Forwarded-Host/Proto: %v", r.Headers)
		}
		id := r.Headers["X-Request-Id"]
		if len(id) != 36 || string(resp.Header.Peek("X-Request-Id")) != id {
			t.Fatalf("request id upstream %q, to client %q", id, resp.Header.Peek("X-Request-Id"))
		}
		if !validTraceparent([]byte(r.Headers["Traceparent"])) {
			t.Fatalf("traceparent %q not started", r.Headers["Traceparent"])
		}
	})
	t.Run("client request id and traceparent kept", func(t *testing.T) {
		tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		_, body := g.do("GET", "/public", func(r *fasthttp.Request) {
			r.Header.Set("X-Request-Id", "abc-123")
			r.Header.Set("traceparent", tp)
		})
		r := decodeEcho(t, body)
		if r.Headers["X-Request-Id"] != "abc-123" || r.Headers["Traceparent"] != tp {
			t.Fatalf("kept headers: %v", r.Headers)
		}
	})
	t.Run("forged consumer headers removed", func(t *testing.T) {
		_, body := g.do("GET", "/public", func(r *fasthttp.Request) {
			r.Header.Set("X-Consumer-Name", "admin")
			r.Header.Set("x-consumer-groups", "root")
			r.Header.Set("X_Consumer_Name", "admin")
			r.Header.Set("x_consumer-groups", "root")
		})
		r := decodeEcho(t, body)
		for k := range r.Headers {
			n := strings.ReplaceAll(k, "_", "-")
			if strings.EqualFold(n, "X-Consumer-Name") || strings.EqualFold(n, "X-Consumer-Groups") {
				t.Fatalf("forged %s reached the upstream", k)
			}
		}
	})
	t.Run("hop-by-hop removed, including Connection-listed", func(t *testing.T) {
		_, body := g.do("GET", "/public", func(r *fasthttp.Request) {
			r.Header.Set("Connection", "keep-alive, X-Hop")
			r.Header.Set("X-Hop", "1")
			r.Header.Set("Keep-Alive", "timeout=5")
			r.Header.Set("Proxy-Authorization", "Basic x")
			r.Header.Set("Te", "trailers")
			r.Header.Set("X-End", "kept")
		})
		r := decodeEcho(t, body)
		for _, h := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Te"} {
			if _, ok := r.Headers[h]; ok {
				t.Fatalf("hop-by-hop %s forwarded: %v", h, r.Headers)
			}
		}
		if r.Headers["X-End"] != "kept" {
			t.Fatal("end-to-end header lost")
		}
	})
	t.Run("404 and 405 are JSON", func(t *testing.T) {
		resp, body := g.get("/nowhere")
		decodeError(t, resp, body, 404)
		resp, body = g.do("POST", "/users/7", nil)
		decodeError(t, resp, body, 405)
		if string(resp.Header.Peek("Allow")) != "GET" {
			t.Fatalf("Allow %q", resp.Header.Peek("Allow"))
		}
	})
	t.Run("params route", func(t *testing.T) {
		_, body := g.get("/users/42")
		if r := decodeEcho(t, body); r.Path != "/users/42" {
			t.Fatalf("path %q", r.Path)
		}
	})
}

// TestPathTricks: the router, the plugins and the upstream must see one
// path, so traversal or encoding tricks cannot reach a route they should
// not.
func TestPathTricks(t *testing.T) {
	up := startEcho(t, "e1")
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
services:
  - {name: echo, targets: [{url: "UP"}]}
routes:
  - {name: public, paths: ["/public"], service: echo}
`, "UP", up.URL))
	cases := []struct {
		raw      string
		wantCode int
		wantPath string
	}{
		{"/public/../admin", 404, ""},
		{"/public/%2e%2e/admin", 404, ""},
		{"/public/%2E%2E%2Fadmin", 404, ""},
		{"//public//x", 200, "/public/x"},
		{"/public/./x/../y", 200, "/public/y"},
		{"/public/a%2Fb", 200, "/public/a/b"},
		{"/public/a%20b", 200, "/public/a%20b"},
		{"/public/%00", 400, ""},
		{"/public/a%5Cb", 400, ""},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			resp, body := g.get(c.raw)
			if resp.StatusCode() != c.wantCode {
				t.Fatalf("status %d want %d: %s", resp.StatusCode(), c.wantCode, body)
			}
			if c.wantCode != 200 {
				decodeError(t, resp, body, c.wantCode)
				return
			}
			// The echo server reports the decoded path it received; check the
			// raw line via the escaped form.
			r := decodeEcho(t, body)
			want := strings.ReplaceAll(c.wantPath, "%20", " ")
			if r.Path != want {
				t.Fatalf("upstream saw %q, want %q", r.Path, want)
			}
		})
	}
}

func TestUpstreamFailures(t *testing.T) {
	up := startEcho(t, "e1")
	slow := startUpstream(t, func(rc *fasthttp.RequestCtx) { time.Sleep(500 * time.Millisecond) })
	g := startGateway(t, strings.NewReplacer("UP", up.URL, "SLOW", slow.URL).Replace(`
listen: "127.0.0.1:0"
services:
  - {name: dead, targets: [{url: "http://127.0.0.1:1"}], retries: 0}
  - {name: slow, targets: [{url: "SLOW"}], timeout: 100ms, retries: 0}
  - name: mixed
    targets: [{url: "http://127.0.0.1:1"}, {url: "UP"}]
    retries: 1
  - {name: empty}
routes:
  - {name: dead, paths: ["/dead"], service: dead}
  - {name: slow, paths: ["/slow"], service: slow}
  - {name: mixed, paths: ["/mixed"], service: mixed}
  - {name: empty, paths: ["/empty"], service: empty}
`))
	resp, body := g.get("/dead")
	decodeError(t, resp, body, 502)
	resp, body = g.get("/slow")
	decodeError(t, resp, body, 504)
	resp, body = g.get("/empty")
	decodeError(t, resp, body, 503)
	// A connect failure is retried on the other target: every request works.
	for i := 0; i < 10; i++ {
		resp, body = g.get("/mixed")
		if resp.StatusCode() != 200 {
			t.Fatalf("request %d via retry: %d %s", i, resp.StatusCode(), body)
		}
	}
}

func TestNoBodyResponses(t *testing.T) {
	up := startUpstream(t, func(rc *fasthttp.RequestCtx) {
		switch string(rc.Path()) {
		case "/204":
			rc.SetStatusCode(204)
		case "/304":
			rc.SetStatusCode(304)
			rc.Response.Header.Set("ETag", `"v1"`)
		default:
			rc.SetBodyString("hello body")
		}
	})
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
services: [{name: s, targets: [{url: "UP"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, "UP", up.URL))
	resp, body := g.get("/204")
	if resp.StatusCode() != 204 || body != "" {
		t.Fatalf("204: %d %q", resp.StatusCode(), body)
	}
	resp, body = g.get("/304")
	if resp.StatusCode() != 304 || body != "" || string(resp.Header.Peek("ETag")) != `"v1"` {
		t.Fatalf("304: %d %q", resp.StatusCode(), body)
	}
	resp, body = g.do("HEAD", "/x", nil)
	if resp.StatusCode() != 200 || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode(), body)
	}
	_, body = g.get("/x")
	if body != "hello body" {
		t.Fatalf("GET after HEAD on the same pooled connection: %q", body)
	}
}

func TestStreamingBothWays(t *testing.T) {
	up := startEcho(t, "e1")
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
server: {max_body_bytes: 104857600}
services: [{name: s, targets: [{url: "UP"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, "UP", up.URL))
	// 8 MiB download: above the stream threshold.
	resp, body := g.get("/bytes/8388608")
	if resp.StatusCode() != 200 || len(body) != 8<<20 {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode(), len(body))
	}
	// 4 MiB upload, Content-Length framed.
	payload := strings.Repeat("y", 4<<20)
	resp, body = g.do("POST", "/upload", func(r *fasthttp.Request) { r.SetBodyString(payload) })
	if r := decodeEcho(t, body); resp.StatusCode() != 200 || r.BodyLen != len(payload) {
		t.Fatalf("upload: %d, upstream got %d bytes", resp.StatusCode(), r.BodyLen)
	}
	// Chunked upload of unknown length.
	resp, body = g.do("POST", "/upload", func(r *fasthttp.Request) {
		r.SetBodyStream(strings.NewReader(payload), -1)
	})
	if r := decodeEcho(t, body); resp.StatusCode() != 200 || r.BodyLen != len(payload) {
		t.Fatalf("chunked upload: %d, upstream got %d bytes", resp.StatusCode(), r.BodyLen)
	}
	// The pooled connection is reusable after streams.
	for i := 0; i < 5; i++ {
		if resp, _ := g.get("/static"); resp.StatusCode() != 200 {
			t.Fatalf("after streams: %d", resp.StatusCode())
		}
	}
}

func TestBodyLimit(t *testing.T) {
	up := startEcho(t, "e1")
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
server: {max_body_bytes: 1000}
services: [{name: s, targets: [{url: "UP"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, "UP", up.URL))
	resp, body := g.do("POST", "/x", func(r *fasthttp.Request) { r.SetBodyString(strings.Repeat("a", 1001)) })
	decodeError(t, resp, body, 413)
	resp, _ = g.do("POST", "/x", func(r *fasthttp.Request) { r.SetBodyString(strings.Repeat("a", 1000)) })
	if resp.StatusCode() != 200 {
		t.Fatalf("at the limit: %d", resp.StatusCode())
	}
}

func TestChunkedBodyLimit(t *testing.T) {
	up := startEcho(t, "e1")
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
server: {max_body_bytes: 300000}
services: [{name: s, targets: [{url: "UP"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, "UP", up.URL))
	// Chunked and above the stream threshold, so it streams: the limit is
	// enforced while it flows.
	// A raw connection, so the test reads the answer while the body is
	// still being sent (a fasthttp client would fail on the write first).
	conn, err := g.ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		_, _ = conn.Write([]byte("POST /x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"))
		chunk := "1000\r\n" + strings.Repeat("a", 0x1000) + "\r\n"
		for i := 0; i < 150; i++ { // 600 KiB
			if _, err := conn.Write([]byte(chunk)); err != nil {
				return
			}
		}
		_, _ = conn.Write([]byte("0\r\n\r\n"))
	}()
	var raw fasthttp.Response
	if err := raw.Read(bufio.NewReader(conn)); err != nil {
		t.Fatalf("reading the answer to an oversized chunked body: %v", err)
	}
	decodeError(t, &raw, string(raw.Body()), 413)
	resp, body := g.do("POST", "/x", func(r *fasthttp.Request) {
		r.SetBodyStream(strings.NewReader(strings.Repeat("a", 290000)), -1)
	})
	if r := decodeEcho(t, body); resp.StatusCode() != 200 || r.BodyLen != 290000 {
		t.Fatalf("under the limit: %d %d", resp.StatusCode(), r.BodyLen)
	}
}

func TestTrustedProxiesXFF(t *testing.T) {
	up := startEcho(t, "e1")
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
server: {trusted_proxies: ["10.0.0.0/8"]}
services: [{name: s, targets: [{url: "UP"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, "UP", up.URL))
	// The in-memory peer is not in 10/8: its claimed chain is dropped.
	_, body := g.do("GET", "/x", func(r *fasthttp.Request) { r.Header.Set("X-Forwarded-For", "1.2.3.4") })
	if got := decodeEcho(t, body).Headers["X-Forwarded-For"]; strings.Contains(got, "1.2.3.4") {
		t.Fatalf("untrusted peer's X-Forwarded-For kept: %q", got)
	}
}

func TestDateHeader(t *testing.T) {
	// A raw upstream: fasthttp servers refuse to send a Date of our choice.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					var req fasthttp.Request
					if req.Read(br) != nil {
						return
					}
					hop := ""
					if string(req.URI().Path()) == "/hop" {
						hop = "Connection: Date\r\n" // Date is hop-by-hop here: dropped, so the gateway dates the answer
					}
					_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n" + hop + "Content-Length: 2\r\n\r\nok"))
				}
			}()
		}
	}()
	up := &upstream{URL: "http://" + ln.Addr().String()}
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
services: [{name: s, targets: [{url: "UP"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`, "UP", up.URL))
	for i := 0; i < 2; i++ { // also on a reused pooled response
		resp, _ := g.get("/x")
		if got := string(resp.Header.Peek("Date")); got != "Mon, 01 Jan 2024 00:00:00 GMT" {
			t.Fatalf("request %d: upstream Date replaced by %q", i, got)
		}
	}
	resp, _ := g.get("/hop")
	if d := string(resp.Header.Peek("Date")); d == "Mon, 01 Jan 2024 00:00:00 GMT" || d == "" {
		t.Fatalf("a Date the upstream named in Connection was forwarded or not replaced: %q", d)
	}
	resp, _ = g.get("/%00")
	if _, err := time.Parse(http.TimeFormat, string(resp.Header.Peek("Date"))); err != nil || resp.StatusCode() != 400 {
		t.Fatalf("gateway answer without a valid Date: %d %q", resp.StatusCode(), resp.Header.Peek("Date"))
	}
}
