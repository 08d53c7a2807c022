package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// bodyRecorder is a loopback upstream that keeps what it received of each
// request: the body exactly, and how it was framed.
type bodyRecorder struct {
	URL string // host:port
	mu  sync.Mutex
	got []recorded
}

type recorded struct {
	Method        string
	Path          string
	ContentLength int64 // -1: chunked
	Chunked       bool
	Body          []byte
	ContentType   string
}

func startBodyRecorder(t testing.TB) *bodyRecorder {
	t.Helper()
	r := &bodyRecorder{}
	r.URL = serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		b, err := io.ReadAll(io.LimitReader(q.Body, 8<<20))
		if err != nil {
			http.Error(w, "reading body: "+err.Error(), 400)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, recorded{Method: q.Method, Path: q.URL.Path, ContentLength: q.ContentLength,
			Chunked: len(q.TransferEncoding) > 0, Body: b, ContentType: q.Header.Get("Content-Type")})
		r.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	return r
}

// last returns the last request received and how many there were.
func (r *bodyRecorder) last(t testing.TB) (recorded, int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		t.Fatal("the upstream received no request")
	}
	return r.got[len(r.got)-1], len(r.got)
}

func (r *bodyRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// bodyExchange writes raw on a new connection to addr and reads one
// response.
func bodyExchange(t testing.TB, addr, raw string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	// A body cut short is the test's to judge from what arrived.
	resp, b, err := connExchange(conn, bufio.NewReader(conn), raw)
	if resp == nil {
		t.Fatalf("the exchange of %q: %v", raw[:min(len(raw), 80)], err)
	}
	return resp, b
}

func bodyPost(path, ctype, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: gw\r\nContent-Type: " + ctype +
		"\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\nConnection: close\r\n\r\n" + body
}

func bodyPostChunked(path, ctype string, chunks ...string) string {
	var b strings.Builder
	b.WriteString("POST " + path + " HTTP/1.1\r\nHost: gw\r\nContent-Type: " + ctype +
		"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
	for _, c := range chunks {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(c), c)
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// TestRequestTransformerEditsJSONBody: SPEC's own example, `json: {remove:
// [password]}`, removes the field from what the upstream gets, for a body
// sent with Content-Length and for a small chunked one (which the gateway
// buffers and sends with a Content-Length). A body over the buffering
// threshold streams through untouched.
func TestRequestTransformerEditsJSONBody(t *testing.T) {
	up := startBodyRecorder(t)
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: login
    paths: ["/login"]
    service: a
    plugins:
      - name: request_transformer
        config: {json: {remove: ["password"], set: {"via": "weir"}}}
`, "UP", up.URL))

	check := func(t *testing.T, raw string) recorded {
		resp, body := bodyExchange(t, w.Addr, raw)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		got, _ := up.last(t)
		var m map[string]any
		if err := json.Unmarshal(got.Body, &m); err != nil {
			t.Fatalf("upstream got %q: %v", got.Body, err)
		}
		if _, ok := m["password"]; ok || m["user"] != "ann" || m["via"] != "weir" {
			t.Fatalf("upstream got %s, want the password removed and via set", got.Body)
		}
		if got.Chunked || got.ContentLength != int64(len(got.Body)) {
			t.Fatalf("upstream got Content-Length %d (chunked %v) for %d bytes", got.ContentLength, got.Chunked, len(got.Body))
		}
		return got
	}
	t.Run("content-length", func(t *testing.T) {
		check(t, bodyPost("/login", "application/json", `{"user":"ann","password":"hunter2"}`))
	})
	t.Run("chunked", func(t *testing.T) {
		check(t, bodyPostChunked("/login", "application/json", `{"user":"ann",`, `"password":"hunter2"}`))
	})
	t.Run("over the threshold streams untouched", func(t *testing.T) {
		big := `{"user":"ann","password":"hunter2","pad":"` + strings.Repeat("x", 300<<10) + `"}`
		resp, body := bodyExchange(t, w.Addr, bodyPost("/login", "application/json", big))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		got, _ := up.last(t)
		if string(got.Body) != big {
			t.Fatalf("a streamed body was changed: %d bytes arrived of %d", len(got.Body), len(big))
		}
		resp, body = bodyExchange(t, w.Addr, bodyPostChunked("/login", "application/json", big[:100<<10], big[100<<10:200<<10], big[200<<10:]))
		if resp.StatusCode != 200 {
			t.Fatalf("chunked: status %d: %s", resp.StatusCode, body)
		}
		got, _ = up.last(t)
		if string(got.Body) != big || !got.Chunked {
			t.Fatalf("a streamed chunked body: %d bytes arrived of %d, chunked %v", len(got.Body), len(big), got.Chunked)
		}
	})
}

// TestLuaRequestBody: weir.request.get_body returns a small body and
// set_body replaces it (with the Content-Length to match), where before
// get_body returned nil and set_body failed the request with 500.
func TestLuaRequestBody(t *testing.T) {
	up := startBodyRecorder(t)
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: lua
    paths: ["/"]
    service: a
    plugins:
      - name: lua
        config:
          source: |
            function access()
              local b = weir.request.get_body()
              if b == nil then
                weir.response.exit(409, "no body seen")
              end
              if b == "stop" then
                weir.response.exit(403, "stopped by body")
              end
              weir.request.set_body("[" .. string.upper(b) .. "]")
            end
`, "UP", up.URL))
	for _, tc := range []struct{ name, raw string }{
		{"content-length", bodyPost("/x", "text/plain", "ping")},
		{"chunked", bodyPostChunked("/x", "text/plain", "pi", "ng")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := bodyExchange(t, w.Addr, tc.raw)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got, _ := up.last(t)
			if string(got.Body) != "[PING]" || got.ContentLength != 6 {
				t.Fatalf("upstream got %q with Content-Length %d, want [PING] and 6", got.Body, got.ContentLength)
			}
		})
	}
	n := up.count()
	if resp, body := bodyExchange(t, w.Addr, bodyPost("/x", "text/plain", "stop")); resp.StatusCode != 403 || body != "stopped by body" {
		t.Fatalf("a script deciding on the body: %d %s", resp.StatusCode, body)
	}
	if up.count() != n {
		t.Fatal("a request the script answered reached the upstream")
	}
}

// TestWasmRequestBody: a Proxy-Wasm guest gets proxy_on_request_body with
// the buffered body, reads it with proxy_get_buffer_bytes (a body rule
// refuses the request) and edits it with proxy_set_buffer_bytes.
func TestWasmRequestBody(t *testing.T) {
	module := buildHeadersGuest(t)
	up := startBodyRecorder(t)
	w := startWeir(t, strings.NewReplacer("UP", up.URL, "MODULE", module).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: wasm
    paths: ["/"]
    service: a
    plugins:
      - name: wasm
        config:
          module: MODULE
          config: {block_body: "<script>", request_body_suffix: "+wasm"}
`))
	resp, body := bodyExchange(t, w.Addr, bodyPost("/f", "text/plain", "name=<script>alert(1)</script>"))
	if resp.StatusCode != 403 || resp.Header.Get("X-Blocked-By") != "headers-example" {
		t.Fatalf("the guest's body rule did not block: %d %s", resp.StatusCode, body)
	}
	if up.count() != 0 {
		t.Fatal("a request blocked by its body reached the upstream")
	}
	resp, body = bodyExchange(t, w.Addr, bodyPostChunked("/f", "text/plain", "name=", "ann"))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got, _ := up.last(t)
	if string(got.Body) != "name=ann+wasm" || got.ContentLength != int64(len("name=ann+wasm")) {
		t.Fatalf("upstream got %q (Content-Length %d), want the guest's suffix", got.Body, got.ContentLength)
	}
}

// TestRequestBodyReadFailures: a body the gateway cannot read whole from
// the client is answered by the gateway (400 for broken chunked framing or
// a client that stops mid-body, 408 when the client is too slow, 413 over
// server.max_body_bytes) and never reaches, or counts against, an
// upstream.
func TestRequestBodyReadFailures(t *testing.T) {
	up := startBodyRecorder(t)
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {read_timeout: 1s, max_body_bytes: 1000}
services: [{name: a, targets: [{url: "http://UP"}], retries: 0}]
routes:
  - {name: r, paths: ["/"], service: a}
`, "UP", up.URL))

	t.Run("broken chunked", func(t *testing.T) {
		resp, body := bodyExchange(t, w.Addr, "POST /x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc\r\nzz\r\n\r\n")
		if resp.StatusCode != 400 {
			t.Fatalf("status %d %s, want 400", resp.StatusCode, body)
		}
	})
	t.Run("chunked over max_body_bytes", func(t *testing.T) {
		resp, body := bodyExchange(t, w.Addr, bodyPostChunked("/x", "text/plain", strings.Repeat("a", 600), strings.Repeat("b", 600)))
		if resp.StatusCode != 413 {
			t.Fatalf("status %d %s, want 413", resp.StatusCode, body)
		}
	})
	t.Run("client too slow", func(t *testing.T) {
		start := time.Now()
		resp, body := bodyExchange(t, w.Addr, "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nabc")
		if resp.StatusCode != 408 {
			t.Fatalf("status %d %s, want 408", resp.StatusCode, body)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("answered after %v", d)
		}
	})
	t.Run("client stops mid-body", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", w.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nabc")
		_ = conn.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil && resp.StatusCode != 400 {
			t.Fatalf("status %d, want 400 (or no answer)", resp.StatusCode)
		}
	})
	if n := up.count(); n != 0 {
		t.Fatalf("the upstream received %d requests with unreadable bodies", n)
	}
	// The target was not blamed: it still serves, and a body still goes.
	resp, body := bodyExchange(t, w.Addr, bodyPost("/x", "text/plain", "fine"))
	if resp.StatusCode != 200 || body != "got 4 bytes" {
		t.Fatalf("after the failures: %d %s", resp.StatusCode, body)
	}
	if got, _ := up.last(t); !bytes.Equal(got.Body, []byte("fine")) {
		t.Fatalf("upstream got %q", got.Body)
	}
}

// TestBufferedBodiesPipelined: requests sent back to back on one
// connection, with bodies the gateway buffers (Content-Length, chunked)
// between them, each reach the upstream with their own body: reading a
// body whole leaves the connection at the next request.
func TestBufferedBodiesPipelined(t *testing.T) {
	up := startBodyRecorder(t)
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - {name: r, paths: ["/"], service: a}
`, "UP", up.URL))
	conn, err := net.DialTimeout("tcp", w.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	keep := func(raw string) string { return strings.Replace(raw, "Connection: close\r\n", "", 1) }
	raw := keep(bodyPost("/one", "text/plain", "first body")) +
		keep(bodyPostChunked("/two", "text/plain", "second ", "body")) +
		"GET /three HTTP/1.1\r\nHost: gw\r\n\r\n" +
		bodyPost("/four", "text/plain", "fourth")
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	want := []struct{ path, body string }{{"/one", "first body"}, {"/two", "second body"}, {"/three", ""}, {"/four", "fourth"}}
	for i, wnt := range want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("got %d bytes", len(wnt.body)) {
			t.Fatalf("answer %d: %d %s", i, resp.StatusCode, b)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.got) != len(want) {
		t.Fatalf("upstream got %d requests, want %d", len(up.got), len(want))
	}
	for i, wnt := range want {
		if g := up.got[i]; g.Path != wnt.path || string(g.Body) != wnt.body {
			t.Fatalf("request %d reached the upstream as %s %q, want %s %q", i, g.Path, g.Body, wnt.path, wnt.body)
		}
	}
}
