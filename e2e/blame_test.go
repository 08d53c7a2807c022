package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawReply is one HTTP/1.1 answer read off a raw connection.
type rawReply struct {
	status string // the status line, without CRLF
	code   int
	header http.Header
	body   string
	err    error // the read failed (nothing, or not a whole answer, came back)
}

// readRawReply reads one answer: the status line, the header, and a body
// framed by Content-Length (the gateway's own answers always are).
func readRawReply(br *bufio.Reader) rawReply {
	var r rawReply
	line, err := br.ReadString('\n')
	if err != nil {
		r.err = fmt.Errorf("reading the status line: %w (got %q)", err, line)
		return r
	}
	r.status = strings.TrimRight(line, "\r\n")
	if f := strings.Fields(r.status); len(f) >= 2 {
		r.code, _ = strconv.Atoi(f[1])
	}
	r.header = http.Header{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			r.err = fmt.Errorf("reading the header: %w", err)
			return r
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			r.header.Add(k, strings.TrimSpace(v))
		}
	}
	n, err := strconv.Atoi(r.header.Get("Content-Length"))
	if err != nil {
		r.err = fmt.Errorf("no Content-Length in %v", r.header)
		return r
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		r.err = fmt.Errorf("reading the body: %w", err)
	}
	r.body = string(b)
	return r
}

// sendRaw opens a connection, writes each part in turn (pausing pause
// between them), half-closes the sending side when closeWrite is set, and
// reads the answer within wait.
func sendRaw(t *testing.T, addr string, parts []string, pause time.Duration, closeWrite bool, wait time.Duration) rawReply {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return rawReply{err: err} // not t.Fatal: callers run this on other goroutines
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	for i, p := range parts {
		if i > 0 && pause > 0 {
			time.Sleep(pause)
		}
		if _, err := conn.Write([]byte(p)); err != nil {
			return rawReply{err: fmt.Errorf("writing part %d: %w", i, err)}
		}
	}
	if closeWrite {
		_ = conn.(*net.TCPConn).CloseWrite()
	}
	return readRawReply(bufio.NewReader(conn))
}

// gatewayError checks that r is the gateway's own JSON error with status
// want: a clean status line with the standard reason phrase, and only the
// gateway's header fields.
func gatewayError(t *testing.T, r rawReply, want int) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("want a %d answer: %v", want, r.err)
	}
	if wantLine := fmt.Sprintf("HTTP/1.1 %d %s", want, http.StatusText(want)); r.status != wantLine {
		t.Fatalf("status line %q, want %q (header %v, body %q)", r.status, wantLine, r.header, r.body)
	}
	var e struct {
		Status    int    `json:"status"`
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Status != want || e.Error == "" || e.RequestID == "" {
		t.Fatalf("want the JSON %d error, got %q", want, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q on a gateway error", ct)
	}
}

// targetHealth reads the admin view of service svc's only target.
func targetHealth(t *testing.T, w *weir, svc string) (healthy bool, circuit string, inFlight float64) {
	t.Helper()
	resp, err := http.Get("http://" + w.Admin + "/services/" + svc + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Targets []struct {
			Healthy  bool    `json:"healthy"`
			Circuit  string  `json:"circuit"`
			InFlight float64 `json:"in_flight"`
		} `json:"targets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || len(h.Targets) != 1 {
		t.Fatalf("service health: %v %+v", err, h)
	}
	return h.Targets[0].Healthy, h.Targets[0].Circuit, h.Targets[0].InFlight
}

// TestClientBodyFaultsAreNotBlamedOnTheTarget sends request bodies that
// fail on the client's side (broken chunked framing, chunk forms fasthttp
// refuses, a body cut short, a body that stalls past read_timeout), each
// ten times against a target that ejects after five failures and a breaker
// that opens at half of five: every one is answered 400 or 408, and the
// target stays healthy with its circuit closed.
func TestClientBodyFaultsAreNotBlamedOnTheTarget(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {read_timeout: 1s, idle_timeout: 5s}
services:
  - name: a
    targets: [{url: "http://UP"}]
    retries: 1
    health_check: {passive: {unhealthy_after: 5, healthy_after_ms: 60000}}
    circuit_breaker: {failure_ratio: 0.5, min_requests: 5, window: 60s, open_for: 60s}
routes: [{name: main, paths: ["/"], service: a}]
`, "UP", up))

	const n = 10
	chunkedHead := "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	lengthHead := "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
	part := strings.Repeat("a", 20000) // past what fasthttp reads before the handler
	cases := []struct {
		name       string
		parts      []string
		pause      time.Duration
		closeWrite bool
		want       int
	}{
		{name: "malformed chunk size", parts: []string{chunkedHead + "G\r\nhello\r\n0\r\n\r\n"}, want: 400},
		// RFC 9112 §7.1 allows both; fasthttp's parser refuses them (see
		// the README, "Whose fault"): the client gets a 400, not the target.
		{name: "chunk size with leading zeros", parts: []string{chunkedHead + "0000000000000000000005\r\nhello\r\n0\r\n\r\n"}, want: 400},
		{name: "whitespace before a chunk extension", parts: []string{chunkedHead + "5 ;ext\r\nhello\r\n0\r\n\r\n"}, want: 400},
		{name: "content-length body cut short", parts: []string{lengthHead + part}, closeWrite: true, want: 400},
		{name: "chunked body cut short", parts: []string{chunkedHead + "4e20\r\n" + part[:5000]}, closeWrite: true, want: 400},
		{name: "chunked body stalls past read_timeout", parts: []string{chunkedHead + "5\r\nhello\r\n"}, want: 408},
		{name: "content-length body stalls past read_timeout", parts: []string{lengthHead + part}, want: 408},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Concurrently: the stalling cases each wait out read_timeout.
			replies := make([]rawReply, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					replies[i] = sendRaw(t, w.Addr, tc.parts, tc.pause, tc.closeWrite, 10*time.Second)
				}(i)
			}
			wg.Wait()
			for _, r := range replies {
				gatewayError(t, r, tc.want)
			}
			if code, _, _ := get(t, newClient(w.Addr), "/static", nil); code != 200 {
				t.Fatalf("a plain request after %d faulty clients: %d", n, code)
			}
			// The client-side failures end their tries without an outcome:
			// nothing is left in flight, and nothing counted as a failure.
			deadline := time.Now().Add(3 * time.Second)
			for {
				healthy, circuit, inFlight := targetHealth(t, w, "a")
				if healthy && circuit == "closed" && inFlight == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after %d faulty clients the target is healthy=%v circuit=%s in_flight=%v", n, healthy, circuit, inFlight)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestUpstreamClosingAfterItsHeaderGets502 has an upstream announce a body
// and close right after its header, with a body the gateway buffers (100
// bytes) and one it streams (past its 256 KiB threshold): nothing of the
// answer reached the client yet, so it gets a clean 502 instead of the
// upstream's header or an empty reply.
func TestUpstreamClosingAfterItsHeaderGets502(t *testing.T) {
	small := listenRaw(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Upstream: leaked\r\n\r\n")
	big := listenRaw(t, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nX-Upstream: leaked\r\n\r\n")
	w := startWeir(t, strings.NewReplacer("SMALL", small, "BIG", big).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - {name: small, targets: [{url: "http://SMALL"}], retries: 0}
  - {name: big, targets: [{url: "http://BIG"}], retries: 0}
routes:
  - {name: small, paths: ["/small"], service: small}
  - {name: big, paths: ["/big"], service: big}
`))
	for _, path := range []string{"/small", "/big"} {
		r := sendRaw(t, w.Addr, []string{"GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"}, 0, false, 5*time.Second)
		gatewayError(t, r, 502)
		if v := r.header.Get("X-Upstream"); v != "" {
			t.Fatalf("%s: the upstream's header leaked into the gateway's error: X-Upstream: %s", path, v)
		}
	}
}

// TestResponseFilterFailureIsACleanError fails a Lua header_filter after
// the upstream answered: the client gets a 500 with the gateway's JSON and
// none of the upstream's header fields.
func TestResponseFilterFailureIsACleanError(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - name: main
    paths: ["/"]
    service: a
    plugins:
      - name: lua
        config: {source: "function header_filter() error('boom') end"}
`, "UP", up))
	for _, path := range []string{"/static", "/status/502"} {
		r := sendRaw(t, w.Addr, []string{"GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"}, 0, false, 5*time.Second)
		gatewayError(t, r, 500)
		if v := r.header.Get("X-Echo-Server"); v != "" {
			t.Fatalf("%s: the upstream's header leaked into the gateway's error: X-Echo-Server: %s", path, v)
		}
	}
}

// TestDeadTargetStatusCodes: the only target refuses connections; with
// retries: 1 there is no other target to retry on, so the client gets the
// failure itself, 502. Once passive health has ejected the target there is
// no healthy target: 503.
func TestDeadTargetStatusCodes(t *testing.T) {
	dead := freeAddr(t) // nothing listens there
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: a
    targets: [{url: "http://DEAD"}]
    retries: 1
    health_check: {passive: {unhealthy_after: 2, healthy_after_ms: 60000}}
routes: [{name: main, paths: ["/"], service: a}]
`, "DEAD", dead))
	for i := 0; i < 2; i++ {
		r := sendRaw(t, w.Addr, []string{"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"}, 0, false, 5*time.Second)
		gatewayError(t, r, 502)
	}
	r := sendRaw(t, w.Addr, []string{"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"}, 0, false, 5*time.Second)
	gatewayError(t, r, 503)
}

// TestMethodNotAllowedIsCountedAs405: a request refused 405 is counted in
// weir_requests_total with status 405, not as a 404.
func TestMethodNotAllowedIsCountedAs405(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/only-get"], methods: [GET], service: a}]
`, "UP", up))
	for i := 0; i < 3; i++ {
		r := sendRaw(t, w.Addr, []string{"DELETE /only-get HTTP/1.1\r\nHost: x\r\n\r\n"}, 0, false, 5*time.Second)
		gatewayError(t, r, 405)
	}
	r := sendRaw(t, w.Addr, []string{"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n"}, 0, false, 5*time.Second)
	gatewayError(t, r, 404)
	if v := w.metric(`weir_requests_total{route="_none",service="_none",status="405"}`); v != 3 {
		t.Fatalf("405s counted %v times with status 405, want 3", v)
	}
	if v := w.metric(`weir_requests_total{route="_none",service="_none",status="404"}`); v != 1 {
		t.Fatalf("404s counted %v times, want 1", v)
	}
}

// TestSpentBodyIsNeverRetried: a PUT (idempotent) with a 100 KB body goes
// to a target that resets the connection once part of the body arrived.
// The body has been streamed away, so the retry must not happen: sending
// what is left in memory (the part read before the handler ran) to the
// next target would be a truncated request answered 200.
func TestSpentBodyIsNeverRetried(t *testing.T) {
	reset := serveRaw(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadFull(c, make([]byte, 30000))
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	good := startEcho(t, "good")
	// round_robin starts with the first target in order.
	w := startWeir(t, strings.NewReplacer("RESET", reset, "GOOD", good).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: a
    targets: [{url: "http://RESET"}, {url: "http://GOOD"}]
    retries: 1
routes: [{name: main, paths: ["/"], service: a}]
`))
	body := strings.Repeat("b", 100000)
	for i := 0; i < 4; i++ {
		r := sendRaw(t, w.Addr, []string{"PUT /doc HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", body}, 0, false, 5*time.Second)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.code == 200 {
			var e struct {
				Server  string `json:"server"`
				BodyLen int    `json:"body_len"`
			}
			_ = json.Unmarshal([]byte(r.body), &e)
			if e.BodyLen != len(body) {
				t.Fatalf("the PUT reached %q with %d of its %d body bytes", e.Server, e.BodyLen, len(body))
			}
			continue
		}
		gatewayError(t, r, 502)
	}
}
